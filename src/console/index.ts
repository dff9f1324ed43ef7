/**
 * The admin console (issue 16; docs/console.md): server-rendered pages at /console/ on the admin
 * listener, usable without JavaScript, under a strict CSP. Admins sign in through Concord itself
 * (the built-in client `concord-console`; `console.allow` decides who is an admin) or with the
 * admin token (break-glass). Every change goes through the admin API's own operations
 * (src/admin/operations.ts): the same validation, onboarding checks and audit entries.
 */
export { consoleRouter, CONSOLE_CLIENT_ID, consoleClient } from './router.ts';
export { LoginTally, instanceHeartbeat, type InstanceView } from './activity.ts';
export type { ConsoleDeps } from './context.ts';
