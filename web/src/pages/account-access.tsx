// Signing up, signing in, and claiming an account an operator created (the first start's account has no password).
import type { ComponentChildren } from "preact";
import { graphql, request } from "../api";
import { SubmitRow } from "../components/ui";
import { useAction, useField } from "../lib/use-action";
import { ACCOUNT_FIELDS, type Account } from "../session";

type SignedIn = (account: Account, csrfToken: string) => void;

// What the page keeps of a new session: the account, and the CSRF token its mutations send (the cookie carries the rest).
const SESSION_FIELDS = graphql(
  `
    fragment SessionFields on Session {
      csrfToken
      account {
        ...AccountFields
      }
    }
  `,
  [ACCOUNT_FIELDS],
);

const SIGN_IN = graphql(
  `
    mutation SignIn($email: String!, $password: String!) {
      signIn(email: $email, password: $password) {
        ...SessionFields
      }
    }
  `,
  [SESSION_FIELDS],
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
        ...SessionFields
      }
    }
  `,
  [SESSION_FIELDS],
);

/** A signed-out page: its title, what it asks for, its submit button, and links to the other such pages. */
function AccessForm({
  title,
  intro,
  label,
  busyLabel,
  work,
  children,
  links,
}: {
  title: string;
  intro?: ComponentChildren;
  label: string;
  busyLabel: string;
  work: () => Promise<void>;
  children: ComponentChildren;
  links: ComponentChildren;
}) {
  const { busy, error, submit } = useAction();
  return (
    <section class="narrow">
      <h1>{title}</h1>
      {intro}
      <form onSubmit={submit(work)}>
        {children}
        <SubmitRow busy={busy} error={error} label={label} busyLabel={busyLabel} />
      </form>
      {links}
    </section>
  );
}

/** A password being chosen, with the rule it must meet beside it. */
function NewPasswordField({ label, hintId, field }: { label: string; hintId: string; field: ReturnType<typeof useField> }) {
  return (
    <>
      <label>
        {label}
        <input
          type="password"
          name="password"
          autocomplete="new-password"
          required
          minLength={10}
          maxLength={256}
          aria-describedby={hintId}
          value={field.value}
          onInput={field.onInput}
        />
      </label>
      <p id={hintId} class="hint">
        10 to 256 characters.
      </p>
    </>
  );
}

export function SignInPage({ onSignedIn }: { onSignedIn: SignedIn }) {
  const email = useField();
  const password = useField();
  return (
    <AccessForm
      title="Sign in"
      label="Sign in"
      busyLabel="Signing in…"
      work={async () => {
        const { signIn } = await request(SIGN_IN, { email: email.value, password: password.value });
        onSignedIn(signIn.account, signIn.csrfToken);
      }}
      links={
        <>
          <p>
            New here? <a href="/dashboard/sign-up">Create an account</a>.
          </p>
          <p>
            Given a claim token by your operator (or by the first start's banner)? <a href="/dashboard/claim">Claim an account</a>.
          </p>
        </>
      }
    >
      <label>
        Email
        <input type="email" name="email" autocomplete="username" required value={email.value} onInput={email.onInput} />
      </label>
      <label>
        Password
        <input type="password" name="password" autocomplete="current-password" required value={password.value} onInput={password.onInput} />
      </label>
    </AccessForm>
  );
}

export function SignUpPage({ onSignedIn }: { onSignedIn: SignedIn }) {
  const email = useField();
  const password = useField();
  const displayName = useField();
  return (
    <AccessForm
      title="Create an account"
      label="Create account"
      busyLabel="Creating…"
      work={async () => {
        await request(SIGN_UP, { email: email.value, password: password.value, displayName: displayName.value.trim() || null });
        const { signIn } = await request(SIGN_IN, { email: email.value, password: password.value });
        onSignedIn(signIn.account, signIn.csrfToken);
      }}
      links={
        <p>
          Already have one? <a href="/dashboard/sign-in">Sign in</a>.
        </p>
      }
    >
      <label>
        Email
        <input type="email" name="email" autocomplete="email" required value={email.value} onInput={email.onInput} />
      </label>
      <NewPasswordField label="Password" hintId="sign-up-password-rule" field={password} />
      <label>
        Display name (optional)
        <input type="text" name="displayName" autocomplete="name" maxLength={100} value={displayName.value} onInput={displayName.onInput} />
      </label>
    </AccessForm>
  );
}

export function ClaimPage({ onSignedIn }: { onSignedIn: SignedIn }) {
  const token = useField();
  const password = useField();
  return (
    <AccessForm
      title="Claim an account"
      intro={
        <p>
          An operator creates an account without a password and gives you a one-time claim token (
          <code>npm run ops -- accounts.issueClaimToken</code>). Paste it here and choose your password.
        </p>
      }
      label="Claim account"
      busyLabel="Claiming…"
      work={async () => {
        const { claimAccount } = await request(CLAIM, { token: token.value.trim(), password: password.value });
        onSignedIn(claimAccount.account, claimAccount.csrfToken);
      }}
      links={
        <p>
          Already claimed? <a href="/dashboard/sign-in">Sign in</a>.
        </p>
      }
    >
      <label>
        Claim token
        <input type="text" name="token" autocomplete="off" spellcheck={false} required placeholder="claim_…" value={token.value} onInput={token.onInput} />
      </label>
      <NewPasswordField label="New password" hintId="claim-password-rule" field={password} />
    </AccessForm>
  );
}
