/**
 * A real gRPC service for the gRPC tests, with @grpc/grpc-js on both sides and
 * no .proto: messages are raw bytes. `Echo` answers each message (unary,
 * server streaming, client streaming, bidi), `Fail` ends with a status and
 * trailing metadata, `Hang` never answers and reports its cancellation.
 */
import type { TestContext } from 'node:test'
import * as grpc from '@grpc/grpc-js'

const bytes = { requestSerialize: (value: Buffer) => value, requestDeserialize: (value: Buffer) => value, responseSerialize: (value: Buffer) => value, responseDeserialize: (value: Buffer) => value }

export const TEST_SERVICE = {
  echo: { path: '/test.Echo/Echo', requestStream: false, responseStream: false, ...bytes },
  fail: { path: '/test.Echo/Fail', requestStream: false, responseStream: false, ...bytes },
  hang: { path: '/test.Echo/Hang', requestStream: false, responseStream: false, ...bytes },
  /** The request says how many messages of how many bytes: "count,size". */
  download: { path: '/test.Echo/Download', requestStream: false, responseStream: true, ...bytes },
  upload: { path: '/test.Echo/Upload', requestStream: true, responseStream: false, ...bytes },
  chat: { path: '/test.Echo/Chat', requestStream: true, responseStream: true, ...bytes }
} satisfies grpc.ServiceDefinition

export const EchoClient = grpc.makeGenericClientConstructor(TEST_SERVICE, 'Echo')
export type EchoClientType = InstanceType<typeof EchoClient> & Record<string, (...args: unknown[]) => unknown>

/** What a server saw, for the tests to read. */
export type ServerSeen = { calls: number, cancelled: number, name: string }

/** A gRPC server on 127.0.0.1 (h2c, or TLS with `tls`), stopped after the test. */
export async function startGrpcServer (t: TestContext, name: string, tls?: { cert: Buffer, key: Buffer }): Promise<{ port: number, seen: ServerSeen, server: grpc.Server }> {
  const seen: ServerSeen = { calls: 0, cancelled: 0, name }
  const server = new grpc.Server()
  const trailer = (): grpc.Metadata => {
    const metadata = new grpc.Metadata()
    metadata.set('x-served-by', name)
    return metadata
  }
  const count = (call: { on: (event: string, listener: () => void) => unknown }): void => {
    seen.calls++
    call.on('cancelled', () => { seen.cancelled++ })
  }
  server.addService(TEST_SERVICE, {
    echo: (call: grpc.ServerUnaryCall<Buffer, Buffer>, callback: grpc.sendUnaryData<Buffer>) => {
      count(call)
      callback(null, Buffer.concat([Buffer.from(`${name}:`), call.request]), trailer())
    },
    fail: (call: grpc.ServerUnaryCall<Buffer, Buffer>, callback: grpc.sendUnaryData<Buffer>) => {
      count(call)
      callback({ code: grpc.status.NOT_FOUND, details: `no such thing: ${call.request.toString()}`, metadata: trailer() })
    },
    hang: (call: grpc.ServerUnaryCall<Buffer, Buffer>) => { count(call) },
    download: (call: grpc.ServerWritableStream<Buffer, Buffer>) => {
      count(call)
      const [times, size] = call.request.toString().split(',').map(Number) as [number, number]
      for (let index = 0; index < times; index++) call.write(Buffer.alloc(size, 97 + (index % 26)))
      call.end(trailer())
    },
    upload: (call: grpc.ServerReadableStream<Buffer, Buffer>, callback: grpc.sendUnaryData<Buffer>) => {
      count(call)
      let total = 0
      let messages = 0
      call.on('data', (chunk: Buffer) => { total += chunk.length; messages++ })
      call.on('end', () => { callback(null, Buffer.from(`${messages},${total}`), trailer()) })
    },
    chat: (call: grpc.ServerDuplexStream<Buffer, Buffer>) => {
      count(call)
      call.on('data', (chunk: Buffer) => { call.write(Buffer.concat([Buffer.from('re:'), chunk])) })
      call.on('end', () => { call.end(trailer()) })
    }
  })
  const credentials = tls === undefined ? grpc.ServerCredentials.createInsecure() : grpc.ServerCredentials.createSsl(null, [{ cert_chain: tls.cert, private_key: tls.key }])
  const port = await new Promise<number>((resolve, reject) => {
    server.bindAsync('127.0.0.1:0', credentials, (error, bound) => { if (error === null) resolve(bound); else reject(error) })
  })
  t.after(() => { server.forceShutdown() })
  return { port, seen, server }
}

/** A client for `target`: TLS to `authority` trusting `ca`, or plain h2c without. */
export function grpcClient (t: TestContext, target: string, authority: string, ca?: Buffer): EchoClientType {
  const credentials = ca === undefined ? grpc.credentials.createInsecure() : grpc.credentials.createSsl(ca)
  const client = new EchoClient(target, credentials, { 'grpc.ssl_target_name_override': authority, 'grpc.default_authority': authority }) as EchoClientType
  t.after(() => { client.close() })
  return client
}

export type Unary = { error: grpc.ServiceError | null, value: Buffer | undefined, trailers: grpc.Metadata | undefined }

/** A unary call, however it ends. */
export async function unary (client: EchoClientType, method: 'echo' | 'fail' | 'hang', message: string, options: grpc.CallOptions = {}): Promise<Unary> {
  return await new Promise((resolve) => {
    let trailers: grpc.Metadata | undefined
    const call = client[method]?.(Buffer.from(message), new grpc.Metadata(), options, (error: grpc.ServiceError | null, value?: Buffer) => {
      // The status event comes after the callback for errors, before it for successes: wait a tick.
      setImmediate(() => { resolve({ error, value, trailers }) })
    }) as grpc.ClientUnaryCall
    call.on('status', (status: grpc.StatusObject) => { trailers = status.metadata })
  })
}

export { grpc }
