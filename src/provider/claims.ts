/**
 * Which claims each scope releases. `idp` (the participant) goes with `openid`, so every token says
 * which organisation vouched for the user. `acr`, `amr` and `auth_time` also go with `openid`: they
 * describe the login (oidc-provider takes them from the session's login result, which carries the
 * upstream IdP's values), and oidc-provider releases a claim in the ID token only when a granted
 * scope lists it.
 */
export const SCOPE_CLAIMS: Record<string, string[]> = {
  openid: ['sub', 'idp', 'acr', 'amr', 'auth_time'],
  // The profile, email, address and phone scopes release what OpenID Connect Core 1.0 section 5.4 lists.
  email: ['email', 'email_verified'],
  profile: ['name', 'family_name', 'given_name', 'middle_name', 'nickname', 'preferred_username', 'profile', 'picture', 'website', 'gender', 'birthdate', 'zoneinfo', 'locale', 'updated_at'],
  address: ['address'],
  phone: ['phone_number', 'phone_number_verified'],
  groups: ['groups'],
  roles: ['roles'],
};

/** Claims about the login rather than the person: in the ID token, never in userinfo. */
export const LOGIN_CLAIMS: ReadonlySet<string> = new Set(['acr', 'amr', 'auth_time']);

export const OIDC_SCOPES = ['openid', 'offline_access', ...Object.keys(SCOPE_CLAIMS).filter((s) => s !== 'openid')];

/** Claims a scope set releases (for Concord's own userinfo): the login claims are left out. */
export function claimsForScopes(scopes: Iterable<string>): Set<string> {
  const names = new Set<string>();
  for (const scope of scopes) for (const claim of SCOPE_CLAIMS[scope] ?? []) if (!LOGIN_CLAIMS.has(claim)) names.add(claim);
  return names;
}
