import { useCallback, useEffect, useMemo, useRef, useState } from "preact/hooks";
import { LocationProvider, Route, Router, useLocation } from "preact-iso";
import { graphql, messageOf, request, setCsrfToken, whenSignedOut } from "./api";
import { ErrorText } from "./components/ui";
import { ClaimPage, SignInPage, SignUpPage } from "./pages/account-access";
import { CreditsPage, TopUpCancelledPage, TopUpSucceededPage } from "./pages/credits";
import { FilesPage } from "./pages/files";
import { KeysPage } from "./pages/keys";
import { UsagePage } from "./pages/usage";
import { type Account, ME_QUERY, SessionContext, type SessionState } from "./session";

const BASE = "/dashboard";
const HOME = `${BASE}/keys`;
const SIGNED_OUT_PAGES = new Set([`${BASE}/sign-in`, `${BASE}/sign-up`, `${BASE}/claim`]);

const SIGN_OUT = graphql(`
  mutation SignOut {
    signOut
  }
`);

type Boot = { state: "loading" } | { state: "failed"; error: string } | { state: "ready"; account: Account | null };

export function App() {
  return (
    <LocationProvider>
      <Dashboard />
    </LocationProvider>
  );
}

function Dashboard() {
  const [boot, setBoot] = useState<Boot>({ state: "loading" });
  const { path, route } = useLocation();

  const load = useCallback(async () => {
    try {
      const { me, csrfToken } = await request(ME_QUERY);
      setCsrfToken(csrfToken);
      setBoot({ state: "ready", account: me });
    } catch (error) {
      if ((error as { code?: string }).code === "unauthorized") setBoot({ state: "ready", account: null });
      else setBoot({ state: "failed", error: messageOf(error) });
    }
  }, []);

  useEffect(() => {
    whenSignedOut(() => setBoot({ state: "ready", account: null }));
    void load();
  }, [load]);

  const signedIn = useCallback(
    (account: Account, csrfToken: string) => {
      setCsrfToken(csrfToken);
      setBoot({ state: "ready", account });
      if (SIGNED_OUT_PAGES.has(path) || path === BASE || path === `${BASE}/`) route(HOME);
    },
    [path, route],
  );

  const account = boot.state === "ready" ? boot.account : null;
  const session = useMemo<SessionState | null>(
    () =>
      account && {
        account,
        refresh: load,
        signOut: async () => {
          await request(SIGN_OUT).catch(() => undefined);
          setCsrfToken(null);
          setBoot({ state: "ready", account: null });
          route(`${BASE}/sign-in`);
        },
      },
    [account, load, route],
  );

  // The dashboard's front page is the keys page; signed in, the sign-in pages lead there too.
  useEffect(() => {
    if (session && (path === BASE || path === `${BASE}/` || SIGNED_OUT_PAGES.has(path))) route(HOME, true);
  }, [session, path, route]);

  if (boot.state === "loading") return <p class="boot">Loading the dashboard…</p>;
  if (boot.state === "failed") {
    return (
      <main class="boot">
        <h1>The dashboard could not load</h1>
        <ErrorText error={boot.error} />
        <button type="button" onClick={() => void load()}>
          Try again
        </button>
      </main>
    );
  }
  if (!session) {
    return (
      <Shell>
        {path === `${BASE}/sign-up` ? (
          <SignUpPage onSignedIn={signedIn} />
        ) : path === `${BASE}/claim` ? (
          <ClaimPage onSignedIn={signedIn} />
        ) : (
          <SignInPage onSignedIn={signedIn} />
        )}
      </Shell>
    );
  }
  return (
    <SessionContext.Provider value={session}>
      <Shell session={session}>
        <Router>
          <Route path={`${BASE}/keys`} component={KeysPage} />
          <Route path={`${BASE}/credits`} component={CreditsPage} />
          <Route path={`${BASE}/credits/success`} component={TopUpSucceededPage} />
          <Route path={`${BASE}/credits/cancel`} component={TopUpCancelledPage} />
          <Route path={`${BASE}/usage`} component={UsagePage} />
          <Route path={`${BASE}/files`} component={FilesPage} />
          <Route default component={NotFound} />
        </Router>
      </Shell>
    </SessionContext.Provider>
  );
}

const NAV = [
  { href: `${BASE}/keys`, label: "Keys" },
  { href: `${BASE}/credits`, label: "Credits" },
  { href: `${BASE}/usage`, label: "Usage" },
  { href: `${BASE}/files`, label: "Files" },
];

/** The page frame: a skip link, the header (navigation when signed in) and the main region, focused on each new page. */
function Shell({ session, children }: { session?: SessionState; children: preact.ComponentChildren }) {
  const { path } = useLocation();
  const main = useRef<HTMLElement>(null);
  const first = useRef(true);
  useEffect(() => {
    // A new page is announced by moving focus to it, as a full page load would; not on the first load.
    if (first.current) first.current = false;
    else main.current?.focus();
  }, [path]);
  return (
    <>
      <a class="skip-link" href="#main">
        Skip to content
      </a>
      <header class="top">
        <a class="brand" href={session ? HOME : `${BASE}/sign-in`}>
          SentX
        </a>
        {session && (
          <>
            <nav aria-label="Dashboard">
              <ul>
                {NAV.map(({ href, label }) => (
                  <li key={href}>
                    <a href={href} aria-current={path === href || path.startsWith(`${href}/`) ? "page" : undefined}>
                      {label}
                    </a>
                  </li>
                ))}
              </ul>
            </nav>
            <div class="who">
              <span class="email" title={session.account.email}>
                {session.account.email}
              </span>
              <button type="button" onClick={() => void session.signOut()}>
                Sign out
              </button>
            </div>
          </>
        )}
      </header>
      <main id="main" ref={main} tabIndex={-1}>
        {children}
      </main>
    </>
  );
}

function NotFound() {
  return (
    <>
      <h1>Page not found</h1>
      <p>
        There is no such page in the dashboard. <a href={HOME}>Go to your keys</a>.
      </p>
    </>
  );
}
