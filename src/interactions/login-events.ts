import type { MappingLimitCode } from '../mapping/index.ts';
import type { SamlCheck, UpstreamErrorCode } from '../upstream/index.ts';

/** Why a brokered login ended as it did; bounded, so it can label metrics. */
export type LoginOutcome =
  | 'success'
  | 'unknown_domain'
  /** The email's domain is claimed by a participant but not proven (pending or suspended): no login. */
  | 'domain_unverified'
  | 'invalid_email'
  | 'participant_disabled'
  | 'participant_not_allowed'
  /** A callback for a participant no longer (or never) known. */
  | 'unknown_participant'
  /** A request on /broker/* that is no callback: another method, another path. */
  | 'broker_not_found'
  | UpstreamErrorCode
  /** The check a SAML Response failed (upstream SAML_CHECKS). */
  | SamlCheck
  | 'mapping_rejected'
  | MappingLimitCode
  | 'session_expired'
  | 'internal';

export interface LoginEvent {
  participant: string | undefined;
  client: string | undefined;
  outcome: LoginOutcome;
  /** Whole brokered login, from the redirect to the upstream until the callback finished. */
  durationMs?: number;
  /** The part of it spent waiting for the upstream in the callback. */
  upstreamMs?: number;
}

/** Where login outcomes go (metrics); a no-op by default. */
export type LoginObserver = (event: LoginEvent) => void;
