import { access, constants, readFile, rename, rm, writeFile } from 'node:fs/promises'
import { dirname } from 'node:path'
import { ErrorCode, PidFileError } from '../errors.js'

/**
 * `run --pid-file PATH`: the pid of the process that takes the signals (this
 * one, the primary when there are workers), for supervisors and `kill -HUP
 * $(cat PATH)`. Claimed before start-up (refused when PATH names a running
 * process), written once every listener is up, removed on a clean exit.
 */
export class PidFile {
  readonly path: string
  readonly #pid: number
  /** A pid the file held for a process that has gone (a crash, a SIGKILL): replaced. */
  readonly stalePid: number | undefined

  private constructor (path: string, pid: number, stalePid: number | undefined) {
    this.path = path
    this.#pid = pid
    this.stalePid = stalePid
  }

  /** Refuse a PATH that names a live process, holds something else, or cannot be written. Writes nothing yet. */
  static async claim (path: string, pid = process.pid): Promise<PidFile> {
    const held = await readPid(path)
    if (held !== undefined && held !== pid && isRunning(held)) {
      throw new PidFileError(ErrorCode.PID_FILE_IN_USE, path, `--pid-file ${path}: process ${held} is running (another srvgate?): stop it, or remove ${path} if that process is not srvgate`)
    }
    try {
      await access(dirname(path), constants.W_OK)
    } catch (cause) {
      throw new PidFileError(ErrorCode.PID_FILE_UNUSABLE, path, `--pid-file ${path}: cannot write in ${dirname(path)} (${(cause as NodeJS.ErrnoException).code ?? String(cause)})`, { cause })
    }
    return new PidFile(path, pid, held === pid ? undefined : held)
  }

  /** Whole or not at all (written beside, then renamed): a reader never sees an empty file. */
  async write (): Promise<void> {
    const beside = `${this.path}.${this.#pid}.tmp`
    try {
      await writeFile(beside, `${this.#pid}\n`)
      await rename(beside, this.path)
    } catch (cause) {
      await rm(beside, { force: true }).catch(() => {})
      throw new PidFileError(ErrorCode.PID_FILE_UNUSABLE, this.path, `--pid-file ${this.path}: cannot write (${(cause as NodeJS.ErrnoException).code ?? String(cause)})`, { cause })
    }
  }

  /**
   * Remove the file if it still names this process (a newer srvgate may have
   * taken it over). Never throws: a file left behind names a process that has
   * gone, which the next claim replaces.
   */
  async remove (): Promise<void> {
    if (await readPid(this.path).catch(() => undefined) === this.#pid) await rm(this.path, { force: true }).catch(() => {})
  }
}

/** The pid PATH holds; undefined when there is no file or it is empty (a write cut short). */
async function readPid (path: string): Promise<number | undefined> {
  let text: string
  try {
    text = await readFile(path, 'utf8')
  } catch (cause) {
    if ((cause as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw new PidFileError(ErrorCode.PID_FILE_UNUSABLE, path, `--pid-file ${path}: cannot read (${(cause as NodeJS.ErrnoException).code ?? String(cause)})`, { cause })
  }
  const trimmed = text.trim()
  if (trimmed === '') return undefined
  // Anything but a pid is refused: a mistyped path (the config file) must not be overwritten.
  if (!/^\d{1,10}$/.test(trimmed) || Number(trimmed) < 1) {
    throw new PidFileError(ErrorCode.PID_FILE_UNUSABLE, path, `--pid-file ${path}: holds something other than a process id; choose another path, or remove it`)
  }
  return Number(trimmed)
}

/** Signal 0 checks without signalling: EPERM means it runs under another user, which is running too. */
function isRunning (pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM'
  }
}
