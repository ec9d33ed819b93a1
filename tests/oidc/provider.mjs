// A real OpenID Provider (oidc-provider) on 127.0.0.1 for Reclaim's sign-in tests.
//
// Usage:
//   node provider.mjs [--port N] [--config FILE] [--client-id ID] [--client-secret SECRET]
//                     [--redirect-uri URI]... [--account JSON]... [--id-token-ttl SECONDS]
//
// --config FILE is a JSON file {"client": {...}, "accounts": [...], "id_token_ttl": N}; the
// other options add to it or override it. A client is {"client_id", "client_secret",
// "redirect_uris": [...]}; an account is {"sub", "password", "preferred_username", "email",
// "email_verified", "name", "upn"?}. Sign-in accepts the preferred_username or the email.
//
// Prints exactly one line on stdout, `ISSUER http://127.0.0.1:<port>`, once listening;
// everything else goes to stderr. Exits on SIGTERM or SIGINT.
//
// The one client is confidential (client_secret_basic), code flow only, PKCE S256 required.
// Scopes openid, email (email, email_verified), profile (name, preferred_username, upn); the
// scope claims are put in the ID token too (conformIdTokenClaims: false). Interactions are our
// own pages: a login form checked against the accounts, then consent granted automatically.

import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { parseArgs } from 'node:util';
import Provider from 'oidc-provider';

// stdout carries only the ISSUER line: oidc-provider prints its notices with console.info.
console.info = console.error;
console.log = console.error;

const { values: args } = parseArgs({
  options: {
    port: { type: 'string', default: '0' },
    config: { type: 'string' },
    'client-id': { type: 'string' },
    'client-secret': { type: 'string' },
    'redirect-uri': { type: 'string', multiple: true },
    account: { type: 'string', multiple: true },
    'id-token-ttl': { type: 'string' },
  },
});

const config = args.config ? JSON.parse(readFileSync(args.config, 'utf8')) : {};
const client = { redirect_uris: [], ...config.client };
if (args['client-id']) client.client_id = args['client-id'];
if (args['client-secret']) client.client_secret = args['client-secret'];
if (args['redirect-uri']) client.redirect_uris = args['redirect-uri'];
const accounts = [...(config.accounts ?? []), ...(args.account ?? []).map((a) => JSON.parse(a))];
const idTokenTtl = Number(args['id-token-ttl'] ?? config.id_token_ttl ?? 300);

function fail(message) {
  console.error(`provider.mjs: ${message}`);
  process.exit(2);
}
if (!client.client_id || !client.client_secret || client.redirect_uris.length === 0) {
  fail('a client needs --client-id, --client-secret and at least one --redirect-uri');
}
for (const a of accounts) {
  if (!a.sub || !a.password || !a.preferred_username || !a.email) {
    fail(`an account needs sub, password, preferred_username and email: ${JSON.stringify(a)}`);
  }
}
if (!Number.isInteger(idTokenTtl) || idTokenTtl < 1) fail('--id-token-ttl must be a positive integer');

const bySub = new Map(accounts.map((a) => [a.sub, a]));
const byLogin = (login) => accounts.find((a) => a.preferred_username === login || a.email === login);

// The issuer names the port, so listen first and build the provider once the port is known.
const server = createServer();
server.listen(Number(args.port), '127.0.0.1', () => {
  const issuer = `http://127.0.0.1:${server.address().port}`;
  const provider = makeProvider(issuer);
  server.on('request', provider.callback());
  process.stdout.write(`ISSUER ${issuer}\n`);
  console.error(`provider.mjs: listening, issuer ${issuer}, client ${client.client_id}, ${accounts.length} accounts`);
});

function makeProvider(issuer) {
  // A fresh signing key each start: tests find it through the JWKS.
  const signingKey = {
    ...generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ format: 'jwk' }),
    alg: 'RS256',
    use: 'sig',
  };

  const provider = new Provider(issuer, {
    clients: [{
      client_id: client.client_id,
      client_secret: client.client_secret,
      redirect_uris: client.redirect_uris,
      response_types: ['code'],
      grant_types: ['authorization_code'],
      token_endpoint_auth_method: 'client_secret_basic',
      scope: 'openid email profile',
    }],
    jwks: { keys: [signingKey] },
    // Keygrip keys: the session and interaction cookies are signed. Plain http works because
    // oidc-provider marks cookies Secure only on https requests.
    cookies: { keys: [randomBytes(32).toString('hex')] },
    responseTypes: ['code'],
    clientAuthMethods: ['client_secret_basic'],
    scopes: ['openid', 'email', 'profile'],
    claims: {
      openid: ['sub'],
      email: ['email', 'email_verified'],
      profile: ['name', 'preferred_username', 'upn'],
    },
    conformIdTokenClaims: false,
    pkce: { required: () => true },
    features: { devInteractions: { enabled: false } },
    interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
    clientBasedCORS: () => false,
    findAccount: (ctx, sub) => {
      const a = bySub.get(sub);
      if (!a) return undefined;
      return {
        accountId: sub,
        claims: () => ({
          sub,
          email: a.email,
          email_verified: a.email_verified ?? true,
          preferred_username: a.preferred_username,
          name: a.name ?? a.preferred_username,
          ...(a.upn ? { upn: a.upn } : {}),
        }),
      };
    },
    ttl: {
      AccessToken: 600,
      AuthorizationCode: 60,
      IdToken: idTokenTtl,
      Interaction: 600,
      Session: 3600,
      Grant: 3600,
    },
  });

  provider.use(async (ctx, next) => {
    await next();
    console.error(`${ctx.method} ${ctx.url} -> ${ctx.status}`);
  });
  provider.use(interactions(provider));
  for (const event of ['server_error', 'authorization.error', 'grant.error']) {
    provider.on(event, (ctx, err) => console.error(`${event}: ${err.message} ${err.error_description ?? ''}`));
  }
  return provider;
}

// GET /interaction/:uid shows the login form, or grants consent at once and goes on;
// POST /interaction/:uid/login checks the password.
function interactions(provider) {
  return async (ctx, next) => {
    const m = ctx.path.match(/^\/interaction\/([\w-]+)(\/login)?$/);
    if (!m) return next();
    ctx.set('Cache-Control', 'no-store');
    const details = await provider.interactionDetails(ctx.req, ctx.res);
    const uid = m[1];
    if (details.uid !== uid) ctx.throw(400, 'interaction mismatch');

    if (ctx.method === 'GET' && !m[2]) {
      if (details.prompt.name === 'login') {
        loginPage(ctx, uid, '', '');
        return;
      }
      if (details.prompt.name === 'consent') {
        finish(ctx, await provider.interactionResult(ctx.req, ctx.res, { consent: { grantId: await grant(provider, details) } }));
        return;
      }
      ctx.throw(501, `prompt ${details.prompt.name} is not handled`);
    }

    if (ctx.method === 'POST' && m[2]) {
      if (details.prompt.name !== 'login') ctx.throw(400, 'no login pending');
      const form = new URLSearchParams(await readBody(ctx.req));
      const username = form.get('username') ?? '';
      const account = byLogin(username);
      if (!account || account.password !== form.get('password')) {
        console.error(`login refused for ${JSON.stringify(username)}`);
        loginPage(ctx, uid, username, 'Wrong username or password.');
        return;
      }
      console.error(`login of ${account.sub}`);
      finish(ctx, await provider.interactionResult(ctx.req, ctx.res, { login: { accountId: account.sub } }, { mergeWithLastSubmission: false }));
      return;
    }
    ctx.throw(405, 'method not allowed');
  };
}

// Grants what the authorization request asked for (the one client is trusted).
async function grant(provider, { grantId, session, params, prompt: { details } }) {
  const g = grantId
    ? await provider.Grant.find(grantId)
    : new provider.Grant({ accountId: session.accountId, clientId: params.client_id });
  if (details.missingOIDCScope) g.addOIDCScope(details.missingOIDCScope.join(' '));
  if (details.missingOIDCClaims) g.addOIDCClaims(details.missingOIDCClaims);
  for (const [indicator, scope] of Object.entries(details.missingResourceScopes ?? {})) {
    g.addResourceScope(indicator, scope.join(' '));
  }
  return g.save();
}

function finish(ctx, returnTo) {
  ctx.redirect(returnTo);
  ctx.status = 303;
}

async function readBody(req) {
  let body = '';
  for await (const chunk of req) {
    body += chunk;
    if (body.length > 64 * 1024) throw new Error('form too large');
  }
  return body;
}

const esc = (s) => String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

function loginPage(ctx, uid, username, error) {
  ctx.type = 'html';
  ctx.body = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Sign in</title></head>
<body>
<h1>Sign in</h1>
${error ? `<p id="error" role="alert">${esc(error)}</p>` : ''}
<form method="post" action="/interaction/${esc(uid)}/login">
<label>Username <input name="username" id="username" autocomplete="username" value="${esc(username)}" autofocus></label>
<label>Password <input name="password" id="password" type="password" autocomplete="current-password"></label>
<button type="submit" id="sign-in">Sign in</button>
</form>
</body></html>
`;
}

// Everything is in memory: nothing to save, so stop at once.
function stop(signal) {
  console.error(`provider.mjs: ${signal}, stopping`);
  server.close();
  process.exit(0);
}
process.on('SIGTERM', () => stop('SIGTERM'));
process.on('SIGINT', () => stop('SIGINT'));
