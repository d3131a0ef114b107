// A real OpenID Provider for Leaseline's tests (oidc-provider 9). Never used in production.
// Usage: node provider.mjs PORT REDIRECT_URI POST_LOGOUT_REDIRECT_URI
// Accounts (devInteractions: any login name, no password): the "sub" is the login name, and the email
// is <login>@<domain> unless the login already contains "@".
import Provider from "oidc-provider";

const [port, redirectUri, postLogoutUri] = process.argv.slice(2);
const issuer = `http://127.0.0.1:${port}`;

const provider = new Provider(issuer, {
  clients: [
    {
      client_id: "leaseline-bff",
      client_secret: "leaseline-test-secret",
      redirect_uris: [redirectUri],
      post_logout_redirect_uris: [postLogoutUri],
      grant_types: ["authorization_code", "refresh_token"],
      response_types: ["code"],
    },
  ],
  pkce: { required: () => true },
  claims: { openid: ["sub"], email: ["email", "email_verified"], profile: ["name"] },
  async findAccount(ctx, id) {
    const email = id.includes("@") ? id : `${id}@demo.leaseline.cn`;
    return {
      accountId: id,
      async claims() {
        return { sub: id, email, email_verified: true, name: id };
      },
    };
  },
  features: { devInteractions: { enabled: true }, rpInitiatedLogout: { enabled: true } },
  cookies: { keys: ["leaseline-test-cookie-key"] },
});
provider.proxy = false;
provider.listen(Number(port), "127.0.0.1", () => {
  console.log(`oidc-provider listening on ${issuer}`);
});
