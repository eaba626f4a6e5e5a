// The console's accounts tab (docs/protocol.md §4f): the user's accounts, opened, renamed, made the
// default and closed over the socket, and the account the Start button starts the simulator on.
import { element, errorText } from "./console-view.js";

const $ = (selector) => document.querySelector(selector);
const money = (n) => (n ?? 0).toLocaleString(undefined, { minimumFractionDigits: 2, maximumFractionDigits: 2 });

/** What a row says of an account besides its figures: default, current, closed. */
export function flagsOf(account) {
  return [account.isDefault && "default", account.isCurrent && "current", account.closedAt != null && "closed"]
    .filter(Boolean)
    .join(" · ");
}

/** The Start button's account choices: the open accounts, the current one chosen (else the default). */
export function startChoices(accounts) {
  const open = accounts.filter((a) => a.closedAt == null);
  const chosen = open.find((a) => a.isCurrent) ?? open.find((a) => a.isDefault);
  return open.map((a) => ({
    value: String(a.accountId),
    label: a.isDefault ? `${a.name} (default)` : a.name,
    selected: a === chosen,
  }));
}

/** `open_account`'s account from the form: an empty starting cash or profile is the server's default. */
export function openingOf(values) {
  const opening = { name: values.name.trim() };
  if (values.accountType === "margin") opening.accountType = "margin";
  if (values.startingCash !== "") opening.startingCash = Number(values.startingCash);
  if (values.profile !== "") opening.profile = values.profile;
  return opening;
}

export function mountAccounts(cm, request) {
  const form = $("#account-form");
  const rows = $("#accounts tbody");
  const picker = $("#start-account");
  const result = $("#accounts-result");
  let currentId = null;

  function renderPicker(accounts) {
    picker.replaceChildren(
      ...startChoices(accounts).map((choice) => {
        const option = element("option", { value: choice.value }, choice.label);
        option.selected = choice.selected;
        return option;
      }),
    );
  }

  function renderRows(accounts) {
    rows.replaceChildren();
    for (const account of accounts) {
      const row = rows.insertRow();
      row.dataset.accountId = String(account.accountId);
      row.dataset.name = account.name;
      const name = element("input", { "aria-label": "Account name", name: "name", maxlength: "64" });
      name.value = account.name;
      row.insertCell().append(name);
      row.insertCell().textContent = account.accountType;
      row.insertCell().textContent = money(account.cash);
      row.insertCell().textContent = money(account.startingCash);
      row.insertCell().textContent = account.profile ?? "–";
      row.insertCell().textContent = flagsOf(account);
      const actions = row.insertCell();
      const rename = element("button", { type: "button", class: "secondary", "data-action": "rename" }, "Rename");
      rename.addEventListener("click", () =>
        act("update_account", { accountId: account.accountId, settings: { name: name.value } }, "Renamed."),
      );
      actions.append(rename);
      if (!account.isDefault) {
        const makeDefault = element("button", { type: "button", class: "secondary", "data-action": "default" }, "Make default");
        makeDefault.addEventListener("click", () =>
          act("update_account", { accountId: account.accountId, settings: { default: true } }, `${account.name} is the default.`),
        );
        const close = element("button", { type: "button", class: "danger", "data-action": "close" }, "Close");
        close.addEventListener("click", () => act("close_account", { accountId: account.accountId }, `${account.name} closed.`));
        actions.append(makeDefault, close);
      }
    }
  }

  async function load() {
    if (!cm.token) return;
    try {
      const reply = await request("list_accounts", {});
      renderPicker(reply.accounts);
      renderRows(reply.accounts);
      const current = reply.accounts.find((a) => a.isCurrent);
      currentId = current?.accountId ?? null;
      if (current) $("#account-name").textContent = current.name;
      rows.dataset.loaded = String(Date.now());
    } catch (error) {
      result.textContent = errorText(error);
    }
  }

  async function act(type, payload, done) {
    try {
      await request(type, payload);
      result.textContent = done;
    } catch (error) {
      result.textContent = errorText(error);
    }
    await load();
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const values = Object.fromEntries(new FormData(form));
    await act("open_account", { account: openingOf(values) }, `${values.name.trim()} opened.`);
    form.reset();
  });
  cm.addEventListener("connected", load);
  cm.addEventListener("exchange_data_status", (event) => {
    const account = event.detail.account;
    if (account.name != null) $("#account-name").textContent = account.name;
    if (account.accountId != null && account.accountId !== currentId) load(); // another account is trading now
  });
}
