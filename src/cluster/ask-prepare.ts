import type { Clock, Timer } from '../util/clock.js'
import type { PrimaryEnd, Unsubscribe } from './channel.js'
import type { MessageOf, ToWorker } from './protocol.js'

/**
 * The first phase of a reload, for one worker: send it the configuration to
 * prepare and wait for its answer. Resolves with undefined when the worker
 * has the generation ready, else with why not (its own error, no answer
 * within timeoutMs, its channel closed). Whatever settles it, nothing it
 * subscribed is left behind: one worker lives through any number of reloads.
 */
export async function askToPrepare (
  channel: PrimaryEnd,
  message: MessageOf<ToWorker, 'srvgate:config'>,
  options: { readonly clock: Clock, readonly timeoutMs: number, readonly name: string }
): Promise<string | undefined> {
  const subscriptions: Unsubscribe[] = []
  let timer: Timer | undefined
  try {
    return await new Promise<string | undefined>((resolve) => {
      subscriptions.push(channel.onMessage((answer) => {
        if (answer.type === 'srvgate:prepared' && answer.generation === message.generation) resolve(answer.error)
      }))
      subscriptions.push(channel.onClose(() => { resolve(`${options.name} exited`) }))
      timer = options.clock.setTimeout(() => { resolve(`${options.name} did not answer within ${options.timeoutMs / 1000} s`) }, options.timeoutMs)
      channel.send(message)
    })
  } finally {
    timer?.cancel()
    for (const unsubscribe of subscriptions) unsubscribe()
  }
}
