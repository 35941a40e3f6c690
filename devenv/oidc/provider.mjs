#!/usr/bin/env node
// A local OpenID Connect provider (npm oidc-provider, unpatched) for the SSO end-to-end tests.
//
// Usage: provider.mjs CONFIG.json, where CONFIG is
//   {"port": 0, "issuer": "http://127.0.0.1:PORT", "client": {"id", "secret", "redirectUri"},
//    "accounts": {"<sub>": {"email": ..., "name": ..., "role": ...}, ...}}
// Prints "listening <port>" once it answers. Accounts are keyed by their subject (the "sub"
// claim); the other claims are released by scope (email: email, email_verified; profile: name,
// preferred_username, role), a claim absent from the account is absent from the tokens.
//
// Sign-in without a browser: GET /interaction/<uid> answers JSON {"uid", "prompt"}; then
//   POST /interaction/<uid>/login   (form: login=<sub>)  signs that account in,
//   POST /interaction/<uid>/confirm                      grants what the client asked for,
// each answering 303 back to the authorization endpoint, as oidc-provider's own examples do.
import { readFileSync } from 'node:fs';
import Provider from 'oidc-provider';

const config = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const accounts = config.accounts;

const provider = new Provider(config.issuer, {
  clients: [{
    client_id: config.client.id,
    client_secret: config.client.secret,
    redirect_uris: [config.client.redirectUri],
    grant_types: ['authorization_code'],
    response_types: ['code'],
  }],
  claims: {
    openid: ['sub'],
    email: ['email', 'email_verified'],
    profile: ['name', 'preferred_username', 'role'],
  },
  cookies: { keys: [config.cookieKey] },
  features: { devInteractions: { enabled: false } },
  interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
  async findAccount(ctx, sub) {
    const account = accounts[sub];
    if (account === undefined) return undefined;
    return {
      accountId: sub,
      async claims() {
        const claims = { sub, preferred_username: sub, ...account };
        if (account.email !== undefined) claims.email_verified = true;
        return claims;
      },
    };
  },
});
provider.on('server_error', (ctx, err) => console.error('server_error', err));

async function form(req) {
  const chunks = [];
  for await (const chunk of req) chunks.push(chunk);
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}

async function consent(details) {
  const { prompt: { details: missing }, params, session: { accountId } } = details;
  const grant = details.grantId
    ? await provider.Grant.find(details.grantId)
    : new provider.Grant({ accountId, clientId: params.client_id });
  if (missing.missingOIDCScope) grant.addOIDCScope(missing.missingOIDCScope.join(' '));
  if (missing.missingOIDCClaims) grant.addOIDCClaims(missing.missingOIDCClaims);
  for (const [indicator, scopes] of Object.entries(missing.missingResourceScopes || {})) {
    grant.addResourceScope(indicator, scopes.join(' '));
  }
  const grantId = await grant.save();
  return { consent: details.grantId ? {} : { grantId } };
}

provider.use(async (ctx, next) => {
  const match = ctx.path.match(/^\/interaction\/([^/]+)(?:\/(login|confirm))?$/);
  if (match === null) return next();
  const details = await provider.interactionDetails(ctx.req, ctx.res);
  if (ctx.method === 'GET' && match[2] === undefined) {
    ctx.body = { uid: details.uid, prompt: details.prompt.name };
    return undefined;
  }
  if (ctx.method !== 'POST') ctx.throw(405);
  let result;
  if (match[2] === 'login') {
    const login = (await form(ctx.req)).get('login');
    if (accounts[login] === undefined) ctx.throw(403, `no account ${login}`);
    result = { login: { accountId: login } };
  } else {
    result = await consent(details);
  }
  const returnTo = await provider.interactionResult(ctx.req, ctx.res, result, {
    mergeWithLastSubmission: false,
  });
  ctx.status = 303;
  ctx.redirect(returnTo);
  return undefined;
});

const server = provider.listen(config.port, '127.0.0.1', () => {
  console.log(`listening ${server.address().port}`);
});
