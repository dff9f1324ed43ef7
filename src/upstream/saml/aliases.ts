/**
 * Built-in aliases of common SAML attribute names: the mapping rules see each attribute under its
 * own name and under its alias here (a participant's `attributeAliases` add to these or replace
 * one), so a rule reads `claims.mail` whether the IdP sent `mail`, its OID or an ADFS claim URI.
 * Sources: eduPerson (REFEDS eduPerson 202208) and the LDAP schemas (RFC 4519, RFC 2798) for the
 * `urn:oid:` names that Shibboleth and federations send (SAML2 Attribute Profile, `attrname-format:uri`);
 * the claim types AD FS and Entra ID send (`http://schemas.xmlsoap.org/...`, `http://schemas.microsoft.com/...`).
 * docs/participants.md lists them.
 */
export const DEFAULT_ATTRIBUTE_ALIASES: Readonly<Record<string, string>> = Object.freeze({
  // LDAP / inetOrgPerson (urn:oid:)
  'urn:oid:0.9.2342.19200300.100.1.1': 'uid',
  'urn:oid:0.9.2342.19200300.100.1.3': 'mail',
  'urn:oid:2.5.4.3': 'cn',
  'urn:oid:2.5.4.4': 'sn',
  'urn:oid:2.5.4.42': 'givenName',
  'urn:oid:2.16.840.1.113730.3.1.241': 'displayName',
  'urn:oid:2.16.840.1.113730.3.1.3': 'employeeNumber',
  'urn:oid:2.5.4.10': 'o',
  'urn:oid:2.5.4.11': 'ou',
  'urn:oid:2.5.4.12': 'title',
  'urn:oid:1.3.6.1.4.1.5923.1.5.1.1': 'isMemberOf',
  // eduPerson
  'urn:oid:1.3.6.1.4.1.5923.1.1.1.1': 'eduPersonAffiliation',
  'urn:oid:1.3.6.1.4.1.5923.1.1.1.6': 'eduPersonPrincipalName',
  'urn:oid:1.3.6.1.4.1.5923.1.1.1.7': 'eduPersonEntitlement',
  'urn:oid:1.3.6.1.4.1.5923.1.1.1.9': 'eduPersonScopedAffiliation',
  'urn:oid:1.3.6.1.4.1.5923.1.1.1.10': 'eduPersonTargetedID',
  'urn:oid:1.3.6.1.4.1.5923.1.1.1.13': 'eduPersonUniqueId',
  'urn:oid:1.3.6.1.4.1.5923.1.1.1.16': 'eduPersonOrcid',
  'urn:oid:1.3.6.1.4.1.25178.1.2.9': 'schacHomeOrganization',
  // AD FS / Entra ID claim types
  'http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress': 'emailaddress',
  'http://schemas.xmlsoap.org/ws/2005/05/identity/claims/upn': 'upn',
  'http://schemas.xmlsoap.org/ws/2005/05/identity/claims/name': 'name',
  'http://schemas.xmlsoap.org/ws/2005/05/identity/claims/givenname': 'givenname',
  'http://schemas.xmlsoap.org/ws/2005/05/identity/claims/surname': 'surname',
  'http://schemas.xmlsoap.org/ws/2005/05/identity/claims/nameidentifier': 'nameidentifier',
  'http://schemas.xmlsoap.org/claims/CommonName': 'commonname',
  'http://schemas.xmlsoap.org/claims/Group': 'group',
  'http://schemas.microsoft.com/ws/2008/06/identity/claims/groups': 'groups',
  'http://schemas.microsoft.com/ws/2008/06/identity/claims/role': 'role',
  'http://schemas.microsoft.com/ws/2008/06/identity/claims/windowsaccountname': 'windowsaccountname',
  'http://schemas.microsoft.com/identity/claims/tenantid': 'tenantid',
  'http://schemas.microsoft.com/identity/claims/objectidentifier': 'objectidentifier',
  'http://schemas.microsoft.com/identity/claims/displayname': 'displayname',
  // Okta's default attribute statements are plain names (email, firstName, lastName): no alias needed.
});
