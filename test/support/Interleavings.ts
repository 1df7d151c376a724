/**
 * An adversarial scheduler for Effect fibers: it runs the runnable ones in a random (seeded) order, so a test explores
 * interleavings that the default FIFO scheduler almost never produces. Code whose correctness leans on one fiber
 * running before another, without waiting for it, fails under it.
 */
import type { Scheduler } from "effect"
import type { RuntimeFiber } from "effect/Fiber"

/** A small seeded PRNG (mulberry32): the same seed replays the same interleaving decisions. */
export const random = (seed: number) => {
  let state = seed >>> 0
  return () => {
    state = (state + 0x6D2B79F5) >>> 0
    let t = state
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/** Runs tasks in random order; between batches of at most `batch` tasks it lets the event loop run. */
export class ShufflingScheduler implements Scheduler.Scheduler {
  private readonly next: () => number
  private tasks: Array<Scheduler.Task> = []
  private running = false

  constructor(seed: number, private readonly batch = 256) {
    this.next = random(seed)
  }

  // Preempting at arbitrary operations is not an option: Effect's runtime expects yields only at its own points.
  shouldYield(fiber: RuntimeFiber<unknown, unknown>): number | false {
    return fiber.currentOpCount > 2048 ? 0 : false
  }

  scheduleTask(task: Scheduler.Task): void {
    this.tasks.push(task)
    if (!this.running) {
      this.running = true
      setImmediate(this.flush)
    }
  }

  private readonly flush = () => {
    for (let n = 0; n < this.batch && this.tasks.length > 0; n++) {
      const index = Math.floor(this.next() * this.tasks.length)
      const task = this.tasks[index]!
      this.tasks[index] = this.tasks[this.tasks.length - 1]!
      this.tasks.pop()
      task()
    }
    if (this.tasks.length > 0) setImmediate(this.flush)
    else this.running = false
  }
}
