import { test } from 'node:test'
import assert from 'node:assert/strict'
import { stateOfGeneration } from '../../../src/cluster/generations.js'

test('a generation is the running one, or the one being prepared beside it; any other is over', () => {
  const running = { generation: 4, name: 'running' }
  const pending = { generation: 5, name: 'pending' }
  assert.equal(stateOfGeneration(4, running, pending), running)
  assert.equal(stateOfGeneration(5, running, pending), pending)
  assert.equal(stateOfGeneration(3, running, pending), undefined, 'committed away: a late message')
  assert.equal(stateOfGeneration(6, running, pending), undefined, 'not yet prepared')
  assert.equal(stateOfGeneration(5, running, undefined), undefined, 'aborted')
  assert.equal(stateOfGeneration(4, undefined, undefined), undefined, 'a worker not started yet')
})
