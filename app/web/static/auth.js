/* People on the dashboard: sign in with email and password (a session cookie, HttpOnly: this
   script never sees it), who is signed in, signing out on expiry, and the QP's signed release.
   Loaded before app.js; uses its globals (state, api, start, signOut, show, toast, $, esc) only
   once the page has loaded. The API-key sign-in stays in app.js for automation. */
"use strict";

window.auth = (() => {
  const BACKGROUND_AFTER_MS = 5000;  // a request this long after the last input is the page's own
  const CHECK_EVERY_MS = 60000;
  // Set while this browser has a session (the cookie itself is HttpOnly: the page cannot see it),
  // so a fresh page asks the server who it is only when there may be someone.
  const SIGNED_IN = "coldchain.signedIn";
  let lastInput = Date.now();
  let checker = null;

  for (const kind of ["pointerdown", "keydown"]) {
    window.addEventListener(kind, () => { lastInput = Date.now(); }, true);
  }

  /* Requests the page makes by itself (refreshes after live events, the expiry check) do not
     count as the person's activity: the server's idle timeout still ends an unattended page. */
  function headers() {
    return Date.now() - lastInput > BACKGROUND_AFTER_MS ? { "X-Coldchain-Background": "true" } : {};
  }

  async function me() {
    const res = await fetch("/api/v1/auth/me", { headers: authHeaders() });
    if (!res.ok) return { status: res.status, problem: await res.json().catch(() => ({})) };
    return { status: 200, me: await res.json() };
  }

  function showWho(who) {
    const el = $("#who");
    el.hidden = !who;
    if (!who) { el.textContent = ""; return; }
    el.textContent = who.kind === "session"
      ? `${who.user.name} (${who.role})` : `API key ${who.actor} (${who.role})`;
    el.title = who.kind === "session" ? who.user.email : "";
    el.dataset.role = who.role;
  }

  // The session ends server-side after inactivity or 12 h: check now and then (as a background
  // request, so the check itself keeps nothing alive) and sign out when it is gone.
  function watch() {
    clearInterval(checker);
    checker = setInterval(async () => {
      if (!state.me) return;
      const answer = await me();
      if (answer.status === 401) signOut(answer.problem.detail || "Your session ended.");
    }, CHECK_EVERY_MS);
  }

  async function started() {
    if (state.me) { showWho(state.me); watch(); return; }
    const answer = await me();  // an API key: show its role
    if (answer.status === 200) showWho(answer.me);
  }

  function signedOut() {
    localStorage.removeItem(SIGNED_IN);
    clearInterval(checker);
    showWho(null);
    closeDialog();
  }

  async function signIn(ev) {
    ev.preventDefault();
    $("#login-error").textContent = "";
    const res = await fetch("/api/v1/auth/login", {
      method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ email: $("#email").value.trim(), password: $("#password").value }),
    });
    const body = await res.json().catch(() => ({}));
    if (!res.ok) { $("#login-error").textContent = body.detail || `HTTP ${res.status}`; return; }
    $("#password").value = "";
    localStorage.setItem(SIGNED_IN, "1");
    state.me = body;
    start();
  }

  async function signOutClicked() {
    // app.js has already cleared the page; end the session on the server too.
    await fetch("/api/v1/auth/logout", { method: "POST" }).catch(() => {});
  }

  /* ---------- the QP's signed release decision ---------- */

  function shipmentShown(s) {
    const box = $("#s-release") || makeReleaseBox();
    box.replaceChildren();
    if (s.signature) {
      const sig = s.signature;
      box.innerHTML = `<strong>${esc(sig.meaning)}</strong> — signed by ${esc(sig.signer_name)}
        (${esc(sig.signer_email)}) at ${esc(sig.signed_at.slice(0, 19).replace("T", " "))} UTC`;
      box.dataset.signed = "true";
    } else if (state.me && state.me.role === "qp" && ["delivered", "received"].includes(s.status)
               && !s.release_decision) {
      box.dataset.signed = "false";
      for (const [decision, label] of [["released", "Release for clinical use…"], ["rejected", "Reject…"]]) {
        const btn = document.createElement("button");
        btn.className = decision === "released" ? "primary" : "";
        btn.dataset.decision = decision;
        btn.textContent = label;
        btn.addEventListener("click", () => openDialog(s, decision));
        box.appendChild(btn);
      }
    }
    box.hidden = box.childNodes.length === 0;
  }

  function makeReleaseBox() {
    const box = document.createElement("div");
    box.id = "s-release";
    box.className = "card release";
    $("#s-cards").after(box);
    return box;
  }

  function closeDialog() {
    const dialog = $("#sign-dialog");
    if (dialog) dialog.remove();
  }

  function openDialog(s, decision) {
    closeDialog();
    const meaning = decision === "released" ? "Released for clinical use" : "Rejected";
    const dialog = document.createElement("dialog");
    dialog.id = "sign-dialog";
    dialog.innerHTML = `<form method="dialog">
      <h2>Sign: ${esc(meaning)}</h2>
      <p class="muted">${esc(s.reference)}. Your electronic signature is the legally binding
        equivalent of your handwritten signature (21 CFR Part 11): re-enter your email and password.</p>
      <label>Reason <textarea name="reason" rows="3" required></textarea></label>
      <label>Email <input name="email" type="text" autocomplete="username" required></label>
      <label>Password <input name="password" type="password" autocomplete="current-password" required></label>
      <p class="error" role="alert"></p>
      <button type="submit" class="primary sign">Sign</button>
      <button type="button" class="cancel">Cancel</button>
    </form>`;
    document.body.appendChild(dialog);
    const form = dialog.querySelector("form");
    dialog.querySelector(".cancel").addEventListener("click", closeDialog);
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const error = form.querySelector(".error");
      error.textContent = "";
      const res = await fetch(`/api/v1/shipments/${s.id}/release`, {
        method: "POST", headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ decision, reason: form.reason.value.trim(), signature: {
          email: form.email.value.trim(), password: form.password.value } }),
      });
      form.password.value = "";
      const body = await res.json().catch(() => ({}));
      if (res.status === 401) { closeDialog(); signOut(body.detail || "Your session ended."); return; }
      if (!res.ok) { error.textContent = body.detail || `HTTP ${res.status}`; return; }
      closeDialog();
      toast(`${s.reference}: ${meaning.toLowerCase()} — signed`);
      await loadShipment(s.id);
    });
    dialog.showModal();
  }

  window.addEventListener("DOMContentLoaded", async () => {
    $("#person-form").addEventListener("submit", signIn);
    $("#signout").addEventListener("click", signOutClicked);
    for (const [link, showKey] of [["#use-key", true], ["#use-person", false]]) {
      $(link).addEventListener("click", () => {
        $("#login-form").hidden = !showKey;
        $("#person-form").hidden = showKey;
      });
    }
    if (state.key || !localStorage.getItem(SIGNED_IN)) return;  // an API key, or nobody
    const answer = await me();  // a session from before (the cookie survives a reload)
    if (answer.status === 200 && answer.me.kind === "session") {
      state.me = answer.me;
      start();
    } else {
      signOut(answer.problem?.detail || "");
    }
  });

  return { headers, started, signedOut, shipmentShown };
})();
