/**
 * @module JWT bearer tokens, verified with `jose`: HS256 with a shared secret, or RS/ES keys from
 * a JWKS (a file's contents or a URL). Issuer, audience, expiry, the issue time (not in the
 * future) and, when configured, the token's age are checked; scopes come from
 * the space-separated `scope` claim (OAuth 2.0), the principal id from `iss` and `sub`.
 */
import {
  createLocalJWKSet,
  createRemoteJWKSet,
  errors,
  type JSONWebKeySet,
  type JWTPayload,
  type JWTVerifyGetKey,
  jwtVerify,
} from 'jose'
import { DEFAULT_POLICY, type Policy } from '../domain/policy.ts'
import { type Principal, principalId, SCOPES, type Scope } from '../domain/principal.ts'
import { ProblemError } from '../errors.ts'
import type { Authenticator } from './authenticator.ts'
import { secretFingerprint } from './tokens.ts'

export interface JwtSettings {
  /** HS256 shared secret (`DOCKGATE_JWT_SECRET`). */
  secret?: string | undefined
  /** A JWKS document (from the `jwt.jwksFile` config setting). */
  jwks?: JSONWebKeySet | undefined
  /** A JWKS URL (the `jwt.jwksUrl` config setting). */
  jwksUrl?: string | undefined
  issuer?: string | undefined
  /** Default `dockgate`. */
  audience?: string | undefined
  /** Refuse tokens issued longer ago than this (their `iat`), whatever their `exp`; none by default. */
  maxAgeSeconds?: number | undefined
  /** The policy of a JWT principal, by `sub`; the default policy (no images) otherwise. */
  policyOf?: (subject: string) => Policy | undefined
}

/** How far ahead of ours an issuer's clock may be: a token "issued" later than this is refused. */
const JWT_CLOCK_SKEW_SECONDS = 60

const JWT_SHAPE = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/
const ASYMMETRIC = [
  'RS256',
  'RS384',
  'RS512',
  'PS256',
  'PS384',
  'PS512',
  'ES256',
  'ES384',
  'ES512',
  'EdDSA',
]

const looksLikeJwt = (token: string) => JWT_SHAPE.test(token)

export function jwtAuthenticator(settings: JwtSettings): Authenticator | undefined {
  const keys: { key: Uint8Array | JWTVerifyGetKey; algorithms: string[] }[] = []
  if (settings.secret) {
    keys.push({ key: new TextEncoder().encode(settings.secret), algorithms: ['HS256'] })
  }
  if (settings.jwks) keys.push({ key: createLocalJWKSet(settings.jwks), algorithms: ASYMMETRIC })
  const remote = settings.jwksUrl ? createRemoteJWKSet(new URL(settings.jwksUrl)) : undefined
  if (remote) keys.push({ key: remote, algorithms: ASYMMETRIC })
  if (keys.length === 0) return undefined
  /** The shared secret's fingerprint, made on the first HS256 token (`Principal.fingerprint`). */
  let secretPrint: Promise<string> | undefined
  const hsFingerprint = () => {
    secretPrint ??= secretFingerprint(settings.secret!).then((print) => `h:${print}`)
    return secretPrint
  }
  /** Whether a key of that `kid` (any key, for none) is among the keys trusted now. */
  const keyTrusted = (kid: string) => {
    const fetched = remote?.jwks()
    // A remote set this instance has not fetched yet: it cannot tell, and does not refuse.
    if (remote && fetched === undefined) return true
    return [settings.jwks, fetched].some(
      (set) =>
        set !== undefined &&
        (kid === '' ? set.keys.length > 0 : set.keys.some((k) => k.kid === kid)),
    )
  }
  const audience = settings.audience ?? 'dockgate'

  return {
    async authenticate(token, options) {
      if (!looksLikeJwt(token)) return undefined
      const algorithm = headerAlgorithm(token)
      const verifier = keys.find((k) => algorithm !== undefined && k.algorithms.includes(algorithm))
      if (!verifier)
        throw invalid('The token is signed with an algorithm this gateway does not accept')
      let payload: JWTPayload
      let fingerprint: string
      try {
        const checks = {
          audience,
          issuer: settings.issuer,
          algorithms: verifier.algorithms,
          currentDate: options?.at,
        }
        if (verifier.key instanceof Uint8Array) {
          payload = (await jwtVerify(token, verifier.key, checks)).payload
          fingerprint = await hsFingerprint()
        } else {
          const verified = await jwtVerify(token, verifier.key, checks)
          payload = verified.payload
          fingerprint = `k:${verified.protectedHeader.kid ?? ''}`
        }
      } catch (error) {
        throw invalid(describeFailure(error))
      }
      if (typeof payload.sub !== 'string' || payload.sub === '' || payload.exp === undefined) {
        throw invalid('The token must carry sub and exp claims')
      }
      checkIssuedAt(payload.iat, settings.maxAgeSeconds, options?.at)
      return {
        ...principalOf(payload.iss, payload.sub, payload.scope, settings.policyOf?.(payload.sub)),
        fingerprint,
      }
    },
    async principalOf(issued) {
      if (issued.kind !== 'jwt') return undefined
      const parts = /^jwt:([^:]*):([^:]*)$/.exec(issued.id)
      if (!parts) return undefined
      const issuer = unescapeIdPart(parts[1]!)
      const subject = unescapeIdPart(parts[2]!)
      // Its issuer must still be the configured one (any, when none is configured).
      if (settings.issuer !== undefined && issuer !== settings.issuer) return undefined
      // And the key that verified its JWT still a trusted one (a ticket's, when it says).
      const fingerprint = issued.fingerprint
      if (fingerprint?.startsWith('h:')) {
        if (!settings.secret || fingerprint !== (await hsFingerprint())) return undefined
      } else if (fingerprint?.startsWith('k:') && !keyTrusted(fingerprint.slice(2))) {
        return undefined
      }
      return {
        id: issued.id,
        kind: 'jwt',
        scopes: new Set(issued.scopes),
        policy: settings.policyOf?.(subject) ?? DEFAULT_POLICY,
        ...(fingerprint === undefined ? {} : { fingerprint }),
      }
    },
  }
}

const unescapeIdPart = (part: string) => part.replaceAll('%3A', ':').replaceAll('%25', '%')

/**
 * A token issued in the future was minted by a wrong clock or to outlive its `exp` window;
 * with a maximum age, a token must say when it was issued and be younger than that. Judged as
 * of `at` when given, as `exp` is (a re-check of a token accepted then).
 */
function checkIssuedAt(
  iat: number | undefined,
  maxAgeSeconds: number | undefined,
  at: Date | undefined,
) {
  const now = (at?.getTime() ?? Date.now()) / 1000
  if (iat !== undefined && iat > now + JWT_CLOCK_SKEW_SECONDS) {
    throw invalid('The token is issued in the future (its iat claim)')
  }
  if (maxAgeSeconds === undefined) return
  if (iat === undefined) throw invalid('The token must carry an iat claim')
  if (now - iat > maxAgeSeconds) {
    throw invalid(`The token is older than ${maxAgeSeconds} seconds (its iat claim)`)
  }
}

/** The id names issuer and subject: a `sub` equal to a token's name is not that token. */
function principalOf(
  issuer: string | undefined,
  subject: string,
  scope: unknown,
  policy: Policy | undefined,
): Principal {
  const granted = typeof scope === 'string' ? scope.split(' ') : []
  const scopes = new Set(
    granted.filter((s): s is Scope => (SCOPES as readonly string[]).includes(s)),
  )
  return {
    id: principalId.jwt(issuer, subject),
    kind: 'jwt',
    scopes,
    policy: policy ?? DEFAULT_POLICY,
  }
}

function headerAlgorithm(token: string): string | undefined {
  try {
    const header: unknown = JSON.parse(
      atob(token.split('.')[0]!.replaceAll('-', '+').replaceAll('_', '/')),
    )
    return header && typeof header === 'object' && 'alg' in header && typeof header.alg === 'string'
      ? header.alg
      : undefined
  } catch {
    return undefined
  }
}

function describeFailure(error: unknown): string {
  if (error instanceof errors.JWTExpired) return 'The token has expired'
  if (error instanceof errors.JWTClaimValidationFailed) {
    return `The token's ${error.claim} claim is not accepted`
  }
  if (error instanceof errors.JWSSignatureVerificationFailed)
    return 'The token signature is invalid'
  if (error instanceof errors.JWKSNoMatchingKey) return 'No key matches the token'
  return 'The token is not valid'
}

const invalid = (detail: string) =>
  new ProblemError(401, 'unauthorized', {
    detail,
    headers: { 'www-authenticate': 'Bearer realm="dockgate", error="invalid_token"' },
  })

/** Tries each authenticator in turn; the first that recognises the token decides. */
export function firstOf(...authenticators: (Authenticator | undefined)[]): Authenticator {
  const present = authenticators.filter((a): a is Authenticator => a !== undefined)
  const first = present[0]
  return {
    async authenticate(token, options) {
      for (const authenticator of present) {
        const principal = await authenticator.authenticate(token, options)
        if (principal) return principal
      }
      return undefined
    },
    // Only the first one's principal is the answer at once: any later one's waits on the first.
    knownPrincipal: (token) => first?.knownPrincipal?.(token),
    async principalOf(issued) {
      for (const authenticator of present) {
        const principal = await authenticator.principalOf?.(issued)
        if (principal) return principal
      }
      return undefined
    },
  }
}
