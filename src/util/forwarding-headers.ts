/**
 * Forwarding headers a client could use to pose as someone else: the ones
 * srvgate writes itself, and the client-address headers other proxies and
 * CDNs set, which frameworks read as the client (Akamai's and Cloudflare's
 * True-Client-IP, Cloudflare's CF-Connecting-IP, X-Client-IP, and
 * X-Original-Forwarded-For from ingress-nginx). An instance gets them from a
 * trusted proxy only (proxy/headers.ts); an auth service never from the
 * client (policy/forward-auth.ts writes its own).
 */
export const FORWARDING_HEADERS: readonly string[] = ['x-forwarded-for', 'x-forwarded-proto', 'x-forwarded-host', 'x-forwarded-port', 'x-forwarded-prefix', 'x-real-ip', 'forwarded', 'true-client-ip', 'x-client-ip', 'x-original-forwarded-for', 'cf-connecting-ip']
