/** acme/ari.ts: RFC 9773's certificate ID and the moment picked in a window. */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { X509Certificate } from 'node:crypto'
import { execFileSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { ariCertId, pickRenewalTime, serialContent } from '../../../src/acme/ari.js'
import { TestCa } from '../../helpers/certificates.js'

test('a serial as DER INTEGER content: leading zero octets dropped, one added when the first bit is set', () => {
  assert.equal(serialContent('01').toString('hex'), '01')
  assert.equal(serialContent('0001AB').toString('hex'), '01ab')
  assert.equal(serialContent('87').toString('hex'), '0087', 'positive')
  assert.equal(serialContent('ABC').toString('hex'), '0abc')
  assert.equal(serialContent('00').toString('hex'), '00')
})

test('the certificate ID: base64url of the AKI keyIdentifier (the issuer\'s SKI), a dot, base64url of the serial; the leaf of a chain', async (t) => {
  const ca = TestCa.create(t)
  const issued = ca.issue(['a.example.com'])
  const certPem = readFileSync(issued.cert, 'utf8')
  const leaf = new X509Certificate(certPem)
  const issuerSki = execFileSync('openssl', ['x509', '-noout', '-ext', 'subjectKeyIdentifier'], { input: new X509Certificate(ca.caPem).toString() }).toString().split('\n')[1]?.trim().replaceAll(':', '') ?? ''
  const id = await ariCertId(`${certPem}\n${ca.caPem}`)
  assert.equal(id, `${Buffer.from(issuerSki, 'hex').toString('base64url')}.${serialContent(leaf.serialNumber).toString('base64url')}`)
  assert.equal(await ariCertId('not a certificate'), undefined)
})

test('the renewal moment: uniform over the window, never before now', () => {
  const window = { startMs: 1000, endMs: 2000 }
  assert.equal(pickRenewalTime(window, 0, 0), 1000)
  assert.equal(pickRenewalTime(window, 0, 0.5), 1500)
  assert.equal(pickRenewalTime(window, 0, 0.999), 1999)
  assert.equal(pickRenewalTime(window, 5000, 0.5), 5000, 'a window past: now')
})
