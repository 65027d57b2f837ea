import { test } from 'node:test'
import assert from 'node:assert/strict'
import { compileTracing } from '../../../src/config/compile-tracing.js'
import type { Findings } from '../../../src/config/findings.js'
import { parseConfigText } from '../../../src/config/load.js'

const compile = (section: Parameters<typeof compileTracing>[0], env: Record<string, string> = {}): { config: ReturnType<typeof compileTracing>, issues: string[] } => {
  const findings: Findings = { issues: [], warnings: [] }
  const config = compileTracing(section, findings, env)
  return { config, issues: findings.issues.map((issue) => `${issue.path}: ${issue.message}`) }
}

test('tracing: off when the section is absent (whatever OTEL_* says) and when OTEL_SDK_DISABLED is true', () => {
  assert.equal(compile(undefined, { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318' }).config, undefined)
  assert.equal(compile({}, { OTEL_SDK_DISABLED: 'TRUE' }).config, undefined)
  assert.notEqual(compile({}, { OTEL_SDK_DISABLED: 'false' }).config, undefined)
})

test('tracing: the defaults the OpenTelemetry specification gives, with no file field and no variable', () => {
  assert.deepEqual(compile({}).config, { endpoint: 'http://localhost:4318/v1/traces', protocol: 'http/protobuf', headers: {}, timeoutMs: 10_000, isGzipped: false, sampleRatio: 1, serviceName: 'srvgate', resourceAttributes: {}, restartAtEdge: false })
})

test('tracing: unset fields come from OTEL_* (the traces-specific variable before the general one; the general endpoint gets /v1/traces); the file wins', () => {
  const env = {
    OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318/',
    OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
    OTEL_EXPORTER_OTLP_HEADERS: 'api-key=se%20cret,x-tenant=a',
    OTEL_EXPORTER_OTLP_TRACES_HEADERS: 'x-tenant=b',
    OTEL_EXPORTER_OTLP_TIMEOUT: '2500',
    OTEL_EXPORTER_OTLP_COMPRESSION: 'gzip',
    OTEL_TRACES_SAMPLER: 'parentbased_traceidratio',
    OTEL_TRACES_SAMPLER_ARG: '0.25',
    OTEL_RESOURCE_ATTRIBUTES: 'service.name=from-resource,deployment.environment=prod'
  }
  assert.deepEqual(compile({}, env).config, { endpoint: 'http://collector:4318/v1/traces', protocol: 'http/json', headers: { 'api-key': 'se cret', 'x-tenant': 'b' }, timeoutMs: 2500, isGzipped: true, sampleRatio: 0.25, serviceName: 'from-resource', resourceAttributes: { 'service.name': 'from-resource', 'deployment.environment': 'prod' }, restartAtEdge: false })
  assert.equal(compile({}, { ...env, OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://traces:4318/custom', OTEL_SERVICE_NAME: 'named' }).config?.endpoint, 'http://traces:4318/custom')
  assert.equal(compile({}, { ...env, OTEL_SERVICE_NAME: 'named' }).config?.serviceName, 'named')
  const fromFile = compile({ otlp: { endpoint: 'http://file:4318', protocol: 'http/protobuf', headers: { 'x-tenant': 'c' }, timeout: '1s' }, sampleRatio: 0.5, serviceName: 'file', restartAtEdge: true }, env).config
  assert.deepEqual(fromFile, { endpoint: 'http://file:4318/v1/traces', protocol: 'http/protobuf', headers: { 'api-key': 'se cret', 'x-tenant': 'c' }, timeoutMs: 1000, isGzipped: true, sampleRatio: 0.5, serviceName: 'file', resourceAttributes: { 'service.name': 'from-resource', 'deployment.environment': 'prod' }, restartAtEdge: true })
  assert.equal(compile({ otlp: { endpoint: 'http://file:4318/otlp/v1/traces' } }).config?.endpoint, 'http://file:4318/otlp/v1/traces', 'a path is used as written')
  assert.deepEqual([compile({}, { OTEL_TRACES_SAMPLER: 'always_off' }).config?.sampleRatio, compile({}, { OTEL_TRACES_SAMPLER: 'parentbased_always_on' }).config?.sampleRatio], [0, 1])
})

test('tracing: an OTEL_* value srvgate cannot use is an issue naming the field it stands for', () => {
  assert.deepEqual(compile({}, { OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc' }).issues, ['tracing.otlp.protocol: OTEL_EXPORTER_OTLP_(TRACES_)PROTOCOL: srvgate exports http/protobuf or http/json'])
  assert.deepEqual(compile({}, { OTEL_EXPORTER_OTLP_COMPRESSION: 'zstd' }).issues, ['tracing.otlp: OTEL_EXPORTER_OTLP_(TRACES_)COMPRESSION must be gzip or none'])
  assert.deepEqual(compile({}, { OTEL_EXPORTER_OTLP_TIMEOUT: 'soon' }).issues, ['tracing.otlp.timeout: OTEL_EXPORTER_OTLP_(TRACES_)TIMEOUT must be a whole number of milliseconds'])
  assert.equal(compile({}, { OTEL_TRACES_SAMPLER: 'traceidratio', OTEL_TRACES_SAMPLER_ARG: '1.5' }).issues.length, 1)
  assert.equal(compile({}, { OTEL_TRACES_SAMPLER: 'jaeger_remote' }).issues.length, 1)
  assert.deepEqual(compile({}, { OTEL_EXPORTER_OTLP_ENDPOINT: '127.0.0.1:4318' }).issues, ['tracing.otlp.endpoint: OTEL_EXPORTER_OTLP_(TRACES_)ENDPOINT must be an http:// or https:// URL, not "127.0.0.1:4318/v1/traces"'])
  // The check a user runs sees the same variables as the gateway it checks for (srvgate check, reload).
  assert.throws(() => parseConfigText('listen: { http: 127.0.0.1:8080 }\ntracing: {}\n', { OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc' }), /tracing\.otlp\.protocol: OTEL_EXPORTER_OTLP_\(TRACES_\)PROTOCOL/)
  assert.deepEqual(compile({ otlp: { protocol: 'http/json' }, sampleRatio: 1 }, { OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc', OTEL_TRACES_SAMPLER: 'jaeger_remote' }).issues, [], 'the file\'s values win: the variables are not read')
})

test('tracing: a header or resource entry that is not key=value is skipped with a warning (the specification\'s rule), the rest kept', () => {
  const findings: Findings = { issues: [], warnings: [] }
  const config = compileTracing({}, findings, { OTEL_EXPORTER_OTLP_HEADERS: 'broken,x-key=abc', OTEL_RESOURCE_ATTRIBUTES: 'region' })
  assert.deepEqual(config?.headers, { 'x-key': 'abc' })
  assert.deepEqual(findings.warnings.map((warning) => warning.message), ['OTEL_EXPORTER_OTLP_(TRACES_)HEADERS: "broken" is not key=value: skipped', 'OTEL_RESOURCE_ATTRIBUTES: "region" is not key=value: skipped'])
  assert.deepEqual(findings.issues, [])
})

test('tracing: the schema refuses a ratio out of range, an unknown protocol, an endpoint that is not http(s) and unknown fields', () => {
  const base = 'listen: { http: 127.0.0.1:8080 }\n'
  for (const [section, path] of [
    ['tracing: { sampleRatio: 2 }', 'tracing.sampleRatio'],
    ['tracing: { otlp: { protocol: grpc } }', 'tracing.otlp.protocol: must be one of: http/protobuf, http/json'],
    ['tracing: { otlp: { endpoint: "collector:4317" } }', 'tracing.otlp.endpoint: must be an http:// or https:// URL'],
    ['tracing: { sampler: always_on }', 'tracing']
  ] as const) {
    assert.throws(() => parseConfigText(`${base}${section}\n`, {}), (error: Error) => error.message.includes(path), section)
  }
  assert.equal(parseConfigText(`${base}tracing: {}\n`, {}).tracing?.endpoint, 'http://localhost:4318/v1/traces')
})
