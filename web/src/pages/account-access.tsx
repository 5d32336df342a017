// Signing up, signing in, and claiming an account an operator created (the first start's account has no password).
import { useState } from "preact/hooks";
import { graphql, messageOf, request } from "../api";
import { ErrorText } from "../components/ui";
import { ACCOUNT_FIELDS, type Account } from "../session";

type SignedIn = (account: Account, csrfToken: string) => void;

const SIGN_IN = graphql(
  `
    mutation SignIn($email: String!, $password: String!) {
      signIn(email: $email, password: $password) {
        csrfToken
        account {
          ...AccountFields
        }
      }
    }
  `,
  [ACCOUNT_FIELDS],
);

const SIGN_UP = graphql(`
  mutation SignUp($email: String!, $password: String!, $displayName: String) {
    signUp(email: $email, password: $password, displayName: $displayName) {
      id
    }
  }
`);

const CLAIM = graphql(
  `
    mutation ClaimAccount($token: String!, $password: String!) {
      claimAccount(token: $token, password: $password) {
        csrfToken
        account {
          ...AccountFields
        }
      }
    }
  `,
  [ACCOUNT_FIELDS],
);

/** A form's busy flag and error, around one submit. */
function useSubmit() {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const submit = (work: () => Promise<void>) => async (event: Event) => {
    event.preventDefault();
    setBusy(true);
    setError(null);
    try {
      await work();
    } catch (failure) {
      setError(messageOf(failure));
      setBusy(false);
    }
  };
  return { busy, error, submit };
}

const fieldValue = (event: Event) => (event.currentTarget as HTMLInputElement).value;

export function SignInPage({ onSignedIn }: { onSignedIn: SignedIn }) {
  const [email, setEmail] = useState("");
  const [password, setPassword] = useState("");
  const { busy, error, submit } = useSubmit();
  return (
    <section class="narrow">
      <h1>Sign in</h1>
      <form
        onSubmit={submit(async () => {
          const { signIn } = await request(SIGN_IN, { email, password });
          onSignedIn(signIn.account, signIn.csrfToken);
        })}
      >
        <label>
          Email
          <input type="email" name="email" autocomplete="username" required value={email} onInput={(e) => setEmail(fieldValue(e))} />
        </label>
        <label>
          Password
          <input type="password" name="password" autocomplete="current-password" required value={password} onInput={(e) => setPassword(fieldValue(e))} />
        </label>
        <ErrorText error={error} />
        <button type="submit" class="primary" disabled={busy}>
          {busy ? "Signing in…" : "Sign in"}
        </button>
      </form>
      <p>
        New here? <a href="/dashboard/sign-up">Create an account</a>.
      </p>
      <p>
        Given a claim token by your operator (or by the first start's banner)? <a href="/dashboard/claim">Claim an account</a>.
      </p>
    </section>
  );
}

export function SignUpPage({ onSignedIn }: { onSignedIn: SignedIn }) {
  const [email, setEmail] = useState("");
  const [password, setPassword] = useState("");
  const [displayName, setDisplayName] = useState("");
  const { busy, error, submit } = useSubmit();
  return (
    <section class="narrow">
      <h1>Create an account</h1>
      <form
        onSubmit={submit(async () => {
          await request(SIGN_UP, { email, password, displayName: displayName.trim() || null });
          const { signIn } = await request(SIGN_IN, { email, password });
          onSignedIn(signIn.account, signIn.csrfToken);
        })}
      >
        <label>
          Email
          <input type="email" name="email" autocomplete="email" required value={email} onInput={(e) => setEmail(fieldValue(e))} />
        </label>
        <label>
          Password
          <input
            type="password"
            name="password"
            autocomplete="new-password"
            required
            minLength={10}
            maxLength={256}
            aria-describedby="sign-up-password-rule"
            value={password}
            onInput={(e) => setPassword(fieldValue(e))}
          />
        </label>
        <p id="sign-up-password-rule" class="hint">
          10 to 256 characters.
        </p>
        <label>
          Display name (optional)
          <input type="text" name="displayName" autocomplete="name" maxLength={100} value={displayName} onInput={(e) => setDisplayName(fieldValue(e))} />
        </label>
        <ErrorText error={error} />
        <button type="submit" class="primary" disabled={busy}>
          {busy ? "Creating…" : "Create account"}
        </button>
      </form>
      <p>
        Already have one? <a href="/dashboard/sign-in">Sign in</a>.
      </p>
    </section>
  );
}

export function ClaimPage({ onSignedIn }: { onSignedIn: SignedIn }) {
  const [token, setToken] = useState("");
  const [password, setPassword] = useState("");
  const { busy, error, submit } = useSubmit();
  return (
    <section class="narrow">
      <h1>Claim an account</h1>
      <p>
        An operator creates an account without a password and gives you a one-time claim token (
        <code>npm run ops -- accounts.issueClaimToken</code>). Paste it here and choose your password.
      </p>
      <form
        onSubmit={submit(async () => {
          const { claimAccount } = await request(CLAIM, { token: token.trim(), password });
          onSignedIn(claimAccount.account, claimAccount.csrfToken);
        })}
      >
        <label>
          Claim token
          <input type="text" name="token" autocomplete="off" spellcheck={false} required placeholder="claim_…" value={token} onInput={(e) => setToken(fieldValue(e))} />
        </label>
        <label>
          New password
          <input
            type="password"
            name="password"
            autocomplete="new-password"
            required
            minLength={10}
            maxLength={256}
            aria-describedby="claim-password-rule"
            value={password}
            onInput={(e) => setPassword(fieldValue(e))}
          />
        </label>
        <p id="claim-password-rule" class="hint">
          10 to 256 characters.
        </p>
        <ErrorText error={error} />
        <button type="submit" class="primary" disabled={busy}>
          {busy ? "Claiming…" : "Claim account"}
        </button>
      </form>
      <p>
        Already claimed? <a href="/dashboard/sign-in">Sign in</a>.
      </p>
    </section>
  );
}
