/**
 * Which claims each scope releases. `idp` (the participant) goes with `openid`, so every token says
 * which organisation vouched for the user.
 */
export const SCOPE_CLAIMS: Record<string, string[]> = {
  openid: ['sub', 'idp'],
  email: ['email', 'email_verified'],
  profile: ['name', 'given_name', 'family_name', 'middle_name', 'nickname', 'preferred_username', 'picture', 'locale', 'zoneinfo', 'updated_at'],
  groups: ['groups'],
  roles: ['roles'],
};

export const OIDC_SCOPES = ['openid', 'offline_access', ...Object.keys(SCOPE_CLAIMS).filter((s) => s !== 'openid')];

/** Claims a scope set releases (for Concord's own userinfo). */
export function claimsForScopes(scopes: Iterable<string>): Set<string> {
  const names = new Set<string>();
  for (const scope of scopes) for (const claim of SCOPE_CLAIMS[scope] ?? []) names.add(claim);
  return names;
}
