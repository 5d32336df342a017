// Credits: the balance, top-ups through Stripe Checkout (and the pages Stripe sends the payer back to), the ledger.
import { useEffect, useState } from "preact/hooks";
import { graphql, request } from "../api";
import { DataTable, ErrorText, Pager, SubmitRow } from "../components/ui";
import { money, number, when } from "../lib/format";
import { useKeysetPages } from "../lib/keyset-pages";
import { useAction } from "../lib/use-action";
import { useLoad } from "../lib/use-load";
import { useSession } from "../session";

const CREATE_CHECKOUT = graphql(`
  mutation CreateTopUpCheckout($amountCents: Int!) {
    createTopUpCheckout(amountCents: $amountCents) {
      url
    }
  }
`);

const LEDGER = graphql(`
  query Ledger($first: Int!, $after: String, $kind: LedgerEntryKind) {
    ledger(first: $first, after: $after, kind: $kind) {
      nodes {
        id
        kind
        amountCents
        balanceAfterCents
        memo
        createdAt
        request {
          id
          model
          endpoint
          inputTokens
          outputTokens
        }
      }
      nextCursor
    }
  }
`);

const TOP_UPS = graphql(`
  query TopUps {
    topUps(first: 5) {
      nodes {
        id
        amountCents
        status
        creditedCents
        refundedCents
        createdAt
      }
    }
  }
`);

// SPEC 5: a top-up is $5 to $1,000.
const PRESETS_DOLLARS = [10, 25, 50, 100] as const;
const MIN_CENTS = 500;
const MAX_CENTS = 100_000;
const LEDGER_PAGE = 20;

const KIND_LABELS = {
  TOPUP: "Top-up",
  USAGE: "Usage",
  REFUND: "Refund",
  GRANT: "Grant",
  ADJUSTMENT: "Adjustment",
  BOOST: "Boost",
} as const;
type Kind = keyof typeof KIND_LABELS;

/** "12.5" → 1250; null unless it is a whole number of cents from $5 to $1,000. */
function customAmountCents(text: string): number | null {
  const trimmed = text.trim().replace(/^\$/, "");
  if (!/^\d+(\.\d{1,2})?$/.test(trimmed)) return null;
  const cents = Math.round(Number(trimmed) * 100);
  return cents >= MIN_CENTS && cents <= MAX_CENTS ? cents : null;
}

function Balance() {
  const { account } = useSession();
  return (
    <dl class="tiles" aria-label="Balance">
      <div>
        <dt>Balance</dt>
        <dd>{money(account.balanceCents)}</dd>
      </div>
      <div>
        <dt>Held</dt>
        <dd>{money(account.heldCents)}</dd>
      </div>
      <div>
        <dt>Available</dt>
        <dd>{money(account.availableCents)}</dd>
      </div>
    </dl>
  );
}

export function CreditsPage() {
  const { refresh } = useSession();
  // The balance may have moved since sign-in: requests spend it.
  useEffect(() => void refresh().catch(() => undefined), [refresh]);
  return (
    <>
      <h1>Credits</h1>
      <Balance />
      <p class="hint">Held is what requests in progress have reserved; it is settled to their real cost as each finishes. Available is what new requests may spend.</p>
      <TopUpForm />
      <RecentTopUps />
      <LedgerHistory />
    </>
  );
}

function TopUpForm() {
  const [choice, setChoice] = useState<string>("25");
  const [custom, setCustom] = useState("");
  const { busy, error, setError, run } = useAction();
  return (
    <form
      class="panel"
      aria-labelledby="top-up-title"
      onSubmit={(event) => {
        event.preventDefault();
        const cents = choice === "custom" ? customAmountCents(custom) : Number(choice) * 100;
        if (cents === null) return setError("Enter an amount from $5 to $1,000, in dollars and cents (for example 12.50).");
        void run(async () => {
          const { createTopUpCheckout } = await request(CREATE_CHECKOUT, { amountCents: cents });
          // Stripe's Checkout page takes the payment; it sends the payer back to /dashboard/credits/success or /cancel.
          window.location.assign(createTopUpCheckout.url);
        });
      }}
    >
      <h2 id="top-up-title">Add credits</h2>
      <fieldset>
        <legend>Amount</legend>
        <div class="choices">
          {PRESETS_DOLLARS.map((dollars) => (
            <label key={dollars} class="choice">
              <input type="radio" name="amount" value={String(dollars)} checked={choice === String(dollars)} onChange={() => setChoice(String(dollars))} />
              {money(dollars * 100)}
            </label>
          ))}
          <label class="choice">
            <input type="radio" name="amount" value="custom" checked={choice === "custom"} onChange={() => setChoice("custom")} />
            Other amount
          </label>
        </div>
        {choice === "custom" && (
          <label>
            Amount in dollars ($5 to $1,000)
            <input
              type="text"
              inputMode="decimal"
              name="customAmount"
              required
              autocomplete="off"
              placeholder="e.g. 40"
              value={custom}
              onInput={(e) => setCustom(e.currentTarget.value)}
            />
          </label>
        )}
      </fieldset>
      <SubmitRow busy={busy} error={error} label="Pay with Stripe" busyLabel="Opening Stripe Checkout…" />
      <p class="hint">You pay on Stripe's Checkout page; the credits reach your balance as soon as Stripe confirms the payment.</p>
    </form>
  );
}

const TOP_UP_STATUS = { PENDING: "Waiting for payment", PAID: "Paid", FAILED: "Failed", EXPIRED: "Expired" } as const;

function RecentTopUps() {
  const { data: topUps, error } = useLoad(async () => (await request(TOP_UPS)).topUps.nodes, []);
  if (!error && (!topUps || topUps.length === 0)) return null;
  return (
    <section aria-labelledby="top-ups-title">
      <h2 id="top-ups-title">Recent top-ups</h2>
      <ErrorText error={error} />
      {topUps && (
        <DataTable caption="Recent top-ups" columns={["Started", "Amount", "Status", "Credited"]}>
          {topUps.map((topUp) => (
            <tr key={topUp.id}>
              <td>{when(topUp.createdAt)}</td>
              <td class="num">{money(topUp.amountCents)}</td>
              <td>
                {TOP_UP_STATUS[topUp.status]}
                {topUp.refundedCents > 0 && `, ${money(topUp.refundedCents)} refunded`}
              </td>
              <td class="num">{money(topUp.creditedCents)}</td>
            </tr>
          ))}
        </DataTable>
      )}
    </section>
  );
}

function LedgerHistory() {
  const [kind, setKind] = useState<Kind | "">("");
  const pages = useKeysetPages();
  const { data: page, error } = useLoad(
    async () => (await request(LEDGER, { first: LEDGER_PAGE, after: pages.after, kind: kind || null })).ledger,
    [kind, pages.after],
  );

  return (
    <section aria-labelledby="ledger-title">
      <h2 id="ledger-title">History</h2>
      <label class="inline">
        Show
        <select
          name="kind"
          value={kind}
          onChange={(e) => {
            setKind(e.currentTarget.value as Kind | "");
            pages.reset();
          }}
        >
          <option value="">Every kind</option>
          {Object.entries(KIND_LABELS).map(([value, label]) => (
            <option key={value} value={value}>
              {label}
            </option>
          ))}
        </select>
      </label>
      <ErrorText error={error} />
      {page === null ? (
        !error && <p>Loading the history…</p>
      ) : page.nodes.length === 0 ? (
        <p>Nothing here yet.</p>
      ) : (
        <DataTable caption="Ledger" columns={["Date", "Kind", "Amount", "Balance after", "Details"]}>
          {page.nodes.map((entry) => (
            <tr key={entry.id}>
              <td>{when(entry.createdAt)}</td>
              <td>{KIND_LABELS[entry.kind]}</td>
              <td class={`num ${entry.amountCents < 0 ? "debit" : "credit"}`}>{money(entry.amountCents)}</td>
              <td class="num">{money(entry.balanceAfterCents)}</td>
              <td>
                {entry.request
                  ? `${entry.request.model}, ${entry.request.endpoint}: ${number(entry.request.inputTokens)} in, ${number(entry.request.outputTokens)} out`
                  : (entry.memo ?? "")}
              </td>
            </tr>
          ))}
        </DataTable>
      )}
      <Pager label="History" pages={pages} nextCursor={page?.nextCursor} />
    </section>
  );
}

const CONFIRM_POLLS = 10;
const CONFIRM_POLL_MS = 3_000;

/**
 * Where Stripe sends the payer after paying: the credit arrives with Stripe's
 * webhook, usually within seconds, before or after the payer gets here. The
 * page asks for the newest top-up until it is paid.
 */
export function TopUpSucceededPage() {
  const { refresh } = useSession();
  const [paid, setPaid] = useState<number | null>(null);
  useEffect(() => {
    let polls = 0;
    let stopped = false;
    const check = async () => {
      const newest = (await request(TOP_UPS)).topUps.nodes[0];
      if (newest?.status === "PAID") {
        setPaid(newest.creditedCents);
        await refresh();
        return true;
      }
      return false;
    };
    const poll = async () => {
      const done = await check().catch(() => false);
      if (!done && !stopped && ++polls < CONFIRM_POLLS) timer = setTimeout(poll, CONFIRM_POLL_MS);
    };
    let timer = setTimeout(poll, 0);
    return () => {
      stopped = true;
      clearTimeout(timer);
    };
  }, [refresh]);
  return (
    <>
      <h1>Thank you: payment received</h1>
      <p role="status">
        {paid !== null
          ? `Your top-up of ${money(paid)} is in your balance.`
          : "Stripe has taken your payment. Your balance grows as soon as Stripe confirms it to the platform, usually within a few seconds; this page checks for it."}
      </p>
      <Balance />
      <p>
        <a href="/dashboard/credits">Back to credits</a>
      </p>
    </>
  );
}

/** Where Stripe sends the payer who left Checkout without paying. */
export function TopUpCancelledPage() {
  return (
    <>
      <h1>Top-up cancelled</h1>
      <p>You left Stripe's Checkout page without paying: nothing was charged and your balance is unchanged.</p>
      <p>
        <a href="/dashboard/credits">Back to credits</a>
      </p>
    </>
  );
}
