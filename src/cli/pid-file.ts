import { randomBytes } from 'node:crypto'
import { access, constants, link, open, rename, rm, writeFile } from 'node:fs/promises'
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
    if (held !== undefined && held !== pid && isRunning(held)) throw inUse(path, held)
    try {
      await access(dirname(path), constants.W_OK)
    } catch (cause) {
      throw new PidFileError(ErrorCode.PID_FILE_UNUSABLE, path, `--pid-file ${path}: cannot write in ${dirname(path)} (${(cause as NodeJS.ErrnoException).code ?? String(cause)})`, { cause })
    }
    return new PidFile(path, pid, held === pid ? undefined : held)
  }

  /**
   * Whole or not at all: written beside under a name nobody can guess, created
   * exclusively (a symlink planted there is never followed), then linked into
   * place, which fails if PATH exists: a gateway started at the same moment
   * with the same PATH cannot both claim it. An existing PATH is replaced only
   * when it names this process or one that has gone.
   */
  async write (): Promise<void> {
    const beside = `${this.path}.${randomBytes(6).toString('hex')}.tmp`
    try {
      await writeFile(beside, `${this.#pid}\n`, { flag: 'wx', mode: 0o644 })
      try {
        await link(beside, this.path)
      } catch (cause) {
        if ((cause as NodeJS.ErrnoException).code !== 'EEXIST') throw cause
        const held = await readPid(this.path)
        if (held !== undefined && held !== this.#pid && isRunning(held)) throw inUse(this.path, held)
        await rename(beside, this.path)
      }
    } catch (cause) {
      if (cause instanceof PidFileError) throw cause
      throw new PidFileError(ErrorCode.PID_FILE_UNUSABLE, this.path, `--pid-file ${this.path}: cannot write (${(cause as NodeJS.ErrnoException).code ?? String(cause)})`, { cause })
    } finally {
      await rm(beside, { force: true }).catch(() => {})
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

function inUse (path: string, held: number): PidFileError {
  return new PidFileError(ErrorCode.PID_FILE_IN_USE, path, `--pid-file ${path}: process ${held} is running (another srvgate?): stop it, or remove ${path} if that process is not srvgate`)
}

/** A pid file is a few bytes: more is not one. */
const MAX_PID_FILE_BYTES = 32

/**
 * The pid PATH holds; undefined when there is no file or it is empty (a write
 * cut short). Only a regular file is read, and only its first bytes, opened
 * without following a symlink and without blocking: a FIFO, a device or a
 * link planted at PATH is refused, never waited on.
 */
async function readPid (path: string): Promise<number | undefined> {
  let text: string
  try {
    const file = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK)
    try {
      if (!(await file.stat()).isFile()) throw new PidFileError(ErrorCode.PID_FILE_UNUSABLE, path, `--pid-file ${path}: is not a regular file; choose another path`)
      const buffer = Buffer.alloc(MAX_PID_FILE_BYTES + 1)
      const { bytesRead } = await file.read(buffer, 0, buffer.length, 0)
      text = buffer.subarray(0, bytesRead).toString('utf8')
    } finally {
      await file.close()
    }
  } catch (cause) {
    if (cause instanceof PidFileError) throw cause
    const code = (cause as NodeJS.ErrnoException).code
    if (code === 'ENOENT') return undefined
    if (code === 'ELOOP') throw new PidFileError(ErrorCode.PID_FILE_UNUSABLE, path, `--pid-file ${path}: is a symbolic link; name the file itself`, { cause })
    throw new PidFileError(ErrorCode.PID_FILE_UNUSABLE, path, `--pid-file ${path}: cannot read (${code ?? String(cause)})`, { cause })
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
