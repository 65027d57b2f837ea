/**
 * Which configuration a message is about. Every message about backends names
 * its generation; on either side of the channel at most two generations are
 * alive: the one running and, during a reload, the one prepared beside it.
 * Anything else is over (committed away or aborted): its messages are late
 * and are dropped.
 */
export function stateOfGeneration<State extends { readonly generation: number }> (
  generation: number,
  running: State | undefined,
  pending: State | undefined
): State | undefined {
  if (running?.generation === generation) return running
  return pending?.generation === generation ? pending : undefined
}
