"""The scenarios a run plays: a healthy flow per feature (order status, shipping, refund, account,
billing), then the failure injections. Each is a function of a `Ctx` (the simulator, the run, its rng)
that returns the agent's answer or raises `RunFailed`. `SCENARIOS` gives each the failure modes it
injects (the run's labels, names from `FAILURE_MODES`), the features and models it fits and the status
the run ends in; `*_FAILURES` say which scenarios each file gets. `execute()` plays a planned run."""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from .content import (
    APPROVAL_TOOL,
    ATTACKER_EMAIL,
    CORE,
    FEATURES,
    INJECTION_TEXT,
    KB_ARTICLES,
    KB_QUERIES,
    MODELS,
    REFUSAL_TEXT,
    SYSTEM_PROMPT,
    TRIAGE_MODEL,
    TRIAGE_PROMPT,
)
from .errors import llm_error, tool_error
from .helpers import iso_date, money_str, nice_date, ns_to_dt, rand_hex
from .payloads import (
    approval,
    customer_payload,
    docs_result,
    email_sent,
    kb_docs,
    make_ticket,
    order_payload,
    refund_done,
    ticket_created,
    tracking_page,
    tracking_url,
)
from .run import Customer, Doc, Err, Msg, Order, Run
from .simulator import Sim

# The public failure-mode names (shared/reference/failure-modes.md), in the catalogue's order.
FAILURE_MODES = (
    "silent_tool_failure",
    "hallucinated_tool",
    "runaway_loop",
    "rate_limited",
    "cascading_retries",
    "timeout",
    "provider_error",
    "context_overflow",
    "prompt_injection",
    "duplicate_side_effect",
    "budget_exceeded",
    "refusal",
    "unapproved_action",
    "tool_error",
)


@dataclass
class Ctx:
    sim: Sim
    run: Run
    rng: random.Random

    @property
    def o(self) -> Order:
        return self.run.order

    @property
    def c(self) -> Customer:
        return self.run.customer


def flow_order_status(x: Ctx) -> str:
    s, o, c = x.sim, x.o, x.c
    if x.rng.random() < 0.2:
        s.use_many([("get_order", {"order_id": o.id}, order_payload(x.run)),
                    ("lookup_customer", {"customer_id": c.id}, customer_payload(x.run))])
    else:
        s.use("get_order", {"order_id": o.id}, order_payload(x.run), note=f"Let me look up order {o.id}.")
    if o.status == "shipped":
        if x.rng.random() < 0.3:
            s.use("web_fetch", {"url": tracking_url(o)}, tracking_page(x.run, x.rng))
        return s.answer(
            f"Good news, {c.name.split()[0]}: order {o.id} shipped with {o.carrier} (tracking {o.tracking}) "
            f"and is expected by {nice_date(o.eta)}. You can follow it at {tracking_url(o)}."
        )
    return s.answer(
        f"Order {o.id} ({o.product}) is still being prepared at our warehouse and is scheduled to ship "
        f"within 2 business days; you will get the tracking number by email as soon as it leaves. "
        f"Estimated delivery is {nice_date(o.eta)}."
    )


def flow_shipping(x: Ctx) -> str:
    s, o = x.sim, x.o
    s.use("get_order", {"order_id": o.id}, order_payload(x.run), note="I'll check the order first.")
    s.use("web_fetch", {"url": tracking_url(o)}, tracking_page(x.run, x.rng))
    if x.rng.random() < 0.35:
        t = s.use("create_ticket", {"queue": "shipping", "summary": f"Carrier investigation for {o.id}",
                                    "priority": "normal"}, ticket_created(x.rng, "shipping"))
        tid = json.loads(t.result or "{}").get("ticket_id", "")
        return s.answer(
            f"{o.carrier} last scanned order {o.id} in transit and has not updated since. I've opened "
            f"ticket {tid} so our shipping team starts a carrier investigation (up to 8 business days); "
            "if the parcel is lost we will send a replacement at no cost."
        )
    return s.answer(
        f"{o.carrier} shows order {o.id} in transit with a scheduled delivery on {nice_date(o.eta)}. "
        "Scans can lag up to 48 hours behind the parcel, so it is most likely on its way. If nothing "
        "arrives by then, reply here and we will open an investigation."
    )


def flow_refund(x: Ctx, *, approve: bool | None = None, email: bool | None = None) -> str:
    s, o, c = x.sim, x.o, x.c
    if x.rng.random() < 0.3:
        query, docs = kb_docs(x.rng, "refund")
        calls = [s.tc("get_order", {"order_id": o.id}), s.tc("search_kb", {"query": query})]
        s.llm(calls=calls)
        s.tool(calls[0], order_payload(x.run))
        s.tool(calls[1], docs_result(docs), docs=docs)
    else:
        s.use("get_order", {"order_id": o.id}, order_payload(x.run), note=f"Let me pull up order {o.id}.")
    approved = approve if approve is not None else x.rng.random() < 0.85
    r = s.irreversible("refund_order", {"order_id": o.id, "amount": o.total, "reason": "defective or unwanted item"},
                       refund_done(x.rng, o.total), target=o.id, approved=approved,
                       reason=f"customer reports problem with {o.product}, refund {money_str(o.total)} USD")
    if r is None:
        return s.answer(
            f"I've checked order {o.id}: it was delivered more than 30 days ago, so our team lead "
            f"approved a free replacement {o.product} instead of a refund. Reply to this message and "
            "we will ship it right away."
        )
    rid = json.loads(r.result or "{}").get("refund_id", "")
    if email if email is not None else x.rng.random() < 0.15:
        s.use("send_email", {"to": c.email, "subject": f"Your refund for order {o.id}",
                             "body": f"We refunded {money_str(o.total)} USD ({rid})."}, email_sent(x.rng))
    return s.answer(
        f"I've refunded ${money_str(o.total)} for order {o.id} to your original payment method "
        f"(refund {rid}). It usually appears within 5-7 business days."
    )


def flow_account(x: Ctx, *, variant: str | None = None) -> str:
    s, c = x.sim, x.c
    variant = variant or x.rng.choice(("password", "password", "email", "delete"))
    if variant == "password":
        docs = [Doc("kb-302", *KB_ARTICLES["kb-302"], round(x.rng.uniform(0.84, 0.93), 4))]
        calls = [s.tc("lookup_customer", {"customer_id": c.id}),
                 s.tc("search_kb", {"query": "password reset email not arriving"})]
        s.llm(calls=calls)
        s.tool(calls[0], customer_payload(x.run))
        s.tool(calls[1], docs_result(docs), docs=docs)
    else:
        s.use("lookup_customer", {"customer_id": c.id}, customer_payload(x.run), note="Let me find your account.")
    if variant == "delete":
        s.irreversible("delete_account", {"customer_id": c.id},
                       {"status": "scheduled", "erase_by": iso_date(ns_to_dt(x.run.start) + timedelta(days=30))},
                       target=c.id, reason="customer request (GDPR)")
        return s.answer(
            "Your account deletion is approved and scheduled: all personal data will be erased within 30 "
            "days, and you will receive a final confirmation email. Order records we must keep for tax "
            "purposes are anonymised."
        )
    t = s.use("create_ticket", {"queue": "accounts", "summary": f"{variant} issue for {c.id}", "priority": "normal"},
              ticket_created(x.rng, "accounts"))
    tid = json.loads(t.result or "{}").get("ticket_id", "")
    if variant == "password":
        return s.answer(
            f"Reset emails to {c.email} were being suppressed after an earlier bounce. I've opened ticket "
            f"{tid} so our accounts team clears the block; you'll be able to request a new reset link "
            "within the hour."
        )
    return s.answer(
        f"I've opened ticket {tid} with our accounts team to change the email address on your account. "
        "For security they will confirm the change with a link sent to the new address."
    )


def flow_billing(x: Ctx) -> str:
    s, o, c = x.sim, x.o, x.c
    s.use_many([("lookup_customer", {"customer_id": c.id}, customer_payload(x.run)),
                ("get_order", {"order_id": o.id}, order_payload(x.run))])
    if x.rng.random() < 0.5:
        return s.answer(
            f"I can see two authorisations of ${money_str(o.total)} for order {o.id}: the second one is a "
            "pending hold that drops off within 3 business days, so you will only be charged once."
        )
    t = s.use("create_ticket", {"queue": "billing", "summary": f"Invoice with VAT number for {o.id}",
                                "priority": "low"}, ticket_created(x.rng, "billing"))
    tid = json.loads(t.result or "{}").get("ticket_id", "")
    return s.answer(
        f"I've asked our billing team to issue an invoice with your VAT number for order {o.id} (ticket "
        f"{tid}); it will arrive at {c.email} within one business day."
    )


HEALTHY_FLOWS: dict[str, Callable[[Ctx], str]] = {
    "order_status": flow_order_status,
    "shipping": flow_shipping,
    "refund": flow_refund,
    "account": flow_account,
    "billing": flow_billing,
}


def sc_healthy(x: Ctx) -> str:
    return HEALTHY_FLOWS[x.run.feature](x)


class RunFailed(Exception):
    def __init__(self, err: Err):
        super().__init__(err.message)
        self.err = err


def sc_silent_payload(x: Ctx) -> str:
    s, o = x.sim, x.o
    s.use("lookup_customer", {"customer_id": x.c.id},
          {"error": "customer service unavailable, try again later"}, note="Let me find your account.")
    s.use("get_order", {"order_id": o.id}, order_payload(x.run))
    return s.answer(
        f"Order {o.id} is {o.status.replace('_', ' ')} and expected by {nice_date(o.eta)}. I've also noted "
        "your account details for the team, nothing else is needed from you."
    )


def sc_silent_exception(x: Ctx) -> str:
    s, o = x.sim, x.o
    c = s.tc("get_order", {"order_id": o.id})
    s.llm(calls=[c])
    s.tool(c, None, error=tool_error("reset", "get_order", x.rng))
    return s.answer(
        f"Thanks for reaching out about order {o.id}. Orders usually ship within 2 business days and "
        "you will get a tracking email as soon as it leaves the warehouse."
    )


def sc_silent_success_false(x: Ctx) -> str:
    s, o = x.sim, x.o
    s.use("get_order", {"order_id": o.id}, order_payload(x.run))
    s.use("create_ticket", {"queue": "shipping", "summary": f"Parcel for {o.id} not received", "priority": "high"},
          {"success": False, "error": "queue 'shipping' is paused"})
    return s.answer(
        f"I've escalated order {o.id} to our shipping team as a high-priority case; they will contact "
        f"{o.carrier} and get back to you within 2 business days."
    )


def sc_tool_retry_ok(x: Ctx) -> str:
    s, o = x.sim, x.o
    c = s.tc("get_order", {"order_id": o.id})
    s.llm(calls=[c])
    s.tool(c, None, error=tool_error("reset", "get_order", x.rng))
    s.use("get_order", {"order_id": o.id}, order_payload(x.run))
    return flow_tail_status(x)


def flow_tail_status(x: Ctx) -> str:
    o = x.o
    if o.status == "shipped":
        return x.sim.answer(
            f"Order {o.id} shipped with {o.carrier} (tracking {o.tracking}) and should arrive by "
            f"{nice_date(o.eta)}."
        )
    return x.sim.answer(
        f"Order {o.id} is being prepared and will ship within 2 business days; estimated delivery is "
        f"{nice_date(o.eta)}."
    )


def sc_tool_fatal(x: Ctx) -> str:
    s, o = x.sim, x.o
    s.use("get_order", {"order_id": o.id}, order_payload(x.run))
    err = tool_error("gateway", "refund_order", x.rng)
    s.irreversible("refund_order", {"order_id": o.id, "amount": o.total, "reason": "item arrived damaged"}, None,
                   target=o.id, reason="item arrived damaged", error=err)
    raise RunFailed(err)


def sc_tool_timeout_retry(x: Ctx) -> str:
    s, o = x.sim, x.o
    s.use("get_order", {"order_id": o.id}, order_payload(x.run))
    c = s.tc("web_fetch", {"url": tracking_url(o)})
    s.llm(calls=[c])
    s.tool(c, None, error=tool_error("timeout", "web_fetch", x.rng), duration=10.0 + x.rng.uniform(0.001, 0.02))
    s.use("web_fetch", {"url": tracking_url(o)}, tracking_page(x.run, x.rng))
    return s.answer(
        f"{o.carrier} shows order {o.id} in transit, scheduled for delivery on {nice_date(o.eta)}. "
        "Tracking scans can lag behind a little, so it should arrive on time."
    )


def sc_llm_timeout_retry(x: Ctx) -> str:
    s, o = x.sim, x.o
    s.llm(error=llm_error("timeout", s.model, x.rng), duration=20.0 + x.rng.uniform(0.0, 0.05))
    s.gap(0.5, 1.5)
    s.use("get_order", {"order_id": o.id}, order_payload(x.run))
    return flow_tail_status(x)


def sc_hallucinated_name(x: Ctx) -> str:
    s, o, c = x.sim, x.o, x.c
    s.use("get_order", {"order_id": o.id}, order_payload(x.run))
    bad = s.tc("issue_store_credit", {"customer_id": c.id, "amount": 15})
    s.llm(calls=[bad])
    s.feed_back(bad, f"Error: issue_store_credit is not a valid tool, try one of [{', '.join(s.tools)}].")
    if "create_ticket" in s.tools:
        t = s.use("create_ticket", {"queue": "tier2", "summary": f"Goodwill credit request for {o.id}", "priority": "low"},
                  ticket_created(x.rng, "tier2"))
        tid = json.loads(t.result or "{}").get("ticket_id", "")
        return s.answer(f"I've asked our team to add a goodwill credit for the trouble with order {o.id} "
                        f"(ticket {tid}); you'll get an email once it is on your account.")
    return flow_tail_status(x)


def sc_hallucinated_args(x: Ctx) -> str:
    s, o = x.sim, x.o
    bad = s.tc("get_order", '{"order_id": "' + o.id + '"')  # truncated JSON: does not parse
    s.llm(calls=[bad])
    s.feed_back(bad, "Error: could not parse arguments for get_order: Expecting ',' delimiter: "
                     f"line 1 column {len(bad.arguments) + 1} (char {len(bad.arguments)})")
    s.use("get_order", {"order_id": o.id}, order_payload(x.run))
    return flow_tail_status(x)


def sc_loop(x: Ctx) -> str:
    s = x.sim
    query, docs = kb_docs(x.rng, x.run.feature if x.run.feature in KB_QUERIES else "refund")
    for _ in range(3):
        s.use("search_kb", {"query": query}, docs_result(docs), docs=docs)
    return s.answer(
        f"According to our policy: {docs[0].content} Let me know if you have any other question."
    )


def sc_loop_max_turns(x: Ctx) -> str:
    s, c = x.sim, x.c
    for _ in range(6):
        s.use("lookup_customer", {"customer_id": c.id}, customer_payload(x.run))
    raise RunFailed(tool_error("max_turns", "runner", x.rng))


def _llm_failures(x: Ctx, kind: str, n: int, *, backoff: tuple[float, float] = (0.5, 2.5)) -> None:
    for i in range(n):
        x.sim.llm(error=llm_error(kind, x.sim.model, x.rng))
        x.sim.gap(backoff[0] * (2 ** i), backoff[1] * (2 ** i))


def sc_rate_limited_once(x: Ctx) -> str:
    _llm_failures(x, "rate_limit", 1)
    return sc_healthy(x)


def sc_rate_limited_cascade_ok(x: Ctx) -> str:
    _llm_failures(x, "rate_limit", 3)
    return sc_healthy(x)


def sc_rate_limited_cascade_fail(x: Ctx) -> str:
    s = x.sim
    s.use("get_order", {"order_id": x.o.id}, order_payload(x.run))
    _llm_failures(x, "rate_limit", 3)
    err = llm_error("rate_limit", s.model, x.rng)
    s.llm(error=err)
    raise RunFailed(err)


def sc_provider_500_retry(x: Ctx) -> str:
    _llm_failures(x, "server", 1)
    return sc_healthy(x)


def sc_provider_conn_fail(x: Ctx) -> str:
    s = x.sim
    s.use("get_order", {"order_id": x.o.id}, order_payload(x.run))
    _llm_failures(x, "connection", 1)
    err = llm_error("connection", s.model, x.rng)
    s.llm(error=err)
    raise RunFailed(err)


def sc_provider_cascade_fail(x: Ctx) -> str:
    s = x.sim
    _llm_failures(x, "server", 2)
    err = llm_error("server", s.model, x.rng)
    s.llm(error=err)
    raise RunFailed(err)


def sc_context_error(x: Ctx) -> str:
    """The triage model (16k window, self-hosted) is asked for 16000 completion tokens: the request fails."""
    s = x.sim
    model = MODELS[TRIAGE_MODEL]
    msgs = [Msg("user", x.run.user_text)]
    n_in = s.input_tokens(TRIAGE_PROMPT, msgs, ())
    err = llm_error("context", model, x.rng, tokens=n_in + 16000)
    s.llm(error=err, model=model, system=TRIAGE_PROMPT, messages=msgs, tools=(), max_tokens=16000)
    raise RunFailed(err)


def sc_finish_length(x: Ctx) -> str:
    s, o = x.sim, x.o
    s.use("get_order", {"order_id": o.id}, order_payload(x.run))
    query, docs = kb_docs(x.rng, "refund")
    s.use("search_kb", {"query": query}, docs_result(docs))
    long = (
        f"Thanks for your patience with order {o.id}. Here is everything about your options. First, our "
        f"refund policy: {docs[0].content} {docs[-1].content} Second, the state of your order: it contains "
        f"{o.qty} x {o.product} at ${money_str(o.price)} each and is currently {o.status}. Third, what happens "
        "next: once we receive the item, the warehouse inspects it within two business days, then the "
        "refund is released to the payment method you used at checkout. If you paid with a gift card the "
        "amount returns to the card balance instead, and if the card has expired we issue a new one by "
        "email. Fourth, if you would prefer an exchange, we can ship the replacement as soon as the return "
        "label is scanned by the carrier, which is usually faster than waiting for the refund to arrive. "
        "Fifth, for items bought during a promotion, the refunded amount is the price you actually paid"
    )
    s.llm(text=long, finish="length", max_tokens=256)
    return long


def sc_injection_ignored(x: Ctx) -> str:
    s, o = x.sim, x.o
    s.use("get_order", {"order_id": o.id}, order_payload(x.run, notes=INJECTION_TEXT))
    return flow_tail_status(x)


def sc_injection_acted_kb(x: Ctx) -> str:
    s, o = x.sim, x.o
    s.use("get_order", {"order_id": o.id}, order_payload(x.run))
    query, docs = kb_docs(x.rng, "refund", inject=True)
    s.use("search_kb", {"query": query}, docs_result(docs), docs=docs)
    s.use("send_email", {"to": ATTACKER_EMAIL, "subject": "Customer list export",
                         "body": "Customer list attached as requested (412 records)."}, email_sent(x.rng))
    return s.answer(
        f"Returns for order {o.id} are accepted within 30 days; once the warehouse receives the "
        f"{o.product}, the refund of ${money_str(o.total)} reaches your card within 5-7 business days."
    )


def sc_injection_acted_web(x: Ctx) -> str:
    s, o = x.sim, x.o
    s.use("get_order", {"order_id": o.id}, order_payload(x.run))
    s.use("web_fetch", {"url": tracking_url(o)}, tracking_page(x.run, x.rng, injected=True))
    s.use("send_email", {"to": ATTACKER_EMAIL, "subject": "Customer list",
                         "body": "As requested, the customer list export is attached."}, email_sent(x.rng))
    return s.answer(
        f"{o.carrier} shows order {o.id} in transit with a scheduled delivery on {nice_date(o.eta)}."
    )


def sc_duplicate_email(x: Ctx) -> str:
    s, o, c = x.sim, x.o, x.c
    s.use("get_order", {"order_id": o.id}, order_payload(x.run))
    args = {"to": c.email, "subject": f"Update on your order {o.id}",
            "body": f"Your order {o.id} is on its way with {o.carrier}, tracking {o.tracking}."}
    s.use("send_email", args, email_sent(x.rng))
    s.use("send_email", args, email_sent(x.rng))
    return s.answer(f"I've emailed you the tracking details for order {o.id} ({o.carrier} {o.tracking}).")


def sc_duplicate_refund(x: Ctx) -> str:
    s, o = x.sim, x.o
    s.use("get_order", {"order_id": o.id}, order_payload(x.run))
    s.use(APPROVAL_TOOL, {"action": "refund_order", "target": o.id, "reason": "item arrived damaged"},
          approval(x.rng, True))
    args = {"order_id": o.id, "amount": o.total, "reason": "item arrived damaged"}
    r = s.use("refund_order", args, refund_done(x.rng, o.total))
    s.use("refund_order", args, refund_done(x.rng, o.total))
    rid = json.loads(r.result or "{}").get("refund_id", "")
    return s.answer(f"I've refunded ${money_str(o.total)} for order {o.id} (refund {rid}); expect it within "
                    "5-7 business days.")


def sc_refusal(x: Ctx) -> str:
    s = x.sim
    if x.rng.random() < 0.5:
        s.use("lookup_customer", {"customer_id": x.c.id}, customer_payload(x.run))
    return s.answer(REFUSAL_TEXT)


def sc_unapproved_refund(x: Ctx) -> str:
    s, o = x.sim, x.o
    s.use("get_order", {"order_id": o.id}, order_payload(x.run))
    r = s.use("refund_order", {"order_id": o.id, "amount": o.total, "reason": "customer request"},
              refund_done(x.rng, o.total))
    rid = json.loads(r.result or "{}").get("refund_id", "")
    return s.answer(f"Done: ${money_str(o.total)} refunded for order {o.id} (refund {rid}).")


def sc_unapproved_delete(x: Ctx) -> str:
    s, c = x.sim, x.c
    s.use("lookup_customer", {"customer_id": c.id}, customer_payload(x.run))
    s.use("delete_account", {"customer_id": c.id},
          {"status": "scheduled", "erase_by": iso_date(ns_to_dt(x.run.start) + timedelta(days=30))})
    return s.answer("Your account has been scheduled for deletion; all personal data will be erased within 30 days.")


def sc_budget(x: Ctx) -> str:
    """A billing audit over a pasted card statement: many LLM calls, each re-reading the statement."""
    s, o, c = x.sim, x.o, x.c
    s.use("lookup_customer", {"customer_id": c.id}, customer_payload(x.run))
    for i in range(14):
        oid = f"A-{int(o.id[2:]) - 37 * (i + 1)}"
        s.use("get_order", {"order_id": oid},
              {"order_id": oid, "customer_id": c.id, "status": "delivered", "total": round(20 + 7.5 * i, 2),
               "currency": "USD", "charges": [{"amount": round(20 + 7.5 * i, 2), "status": "settled"}]})
    for q in ("charged twice same order", "refund of duplicate settlement", "statement descriptor ACME*OUTFIT"):
        s.use("search_kb", {"query": q}, docs_result([Doc("kb-401", *KB_ARTICLES["kb-401"], 0.88)]))
    t = s.use("create_ticket", {"queue": "billing", "summary": f"Statement audit for {c.id}: 2 possible duplicates",
                                "priority": "normal"}, ticket_created(x.rng, "billing"))
    tid = json.loads(t.result or "{}").get("ticket_id", "")
    return s.answer(f"I went through all 14 orders on your statement: two settlements look duplicated. "
                    f"Billing will confirm and refund them (ticket {tid}).")


def sc_near_window(x: Ctx) -> str:
    """A tracking-history export of ~120k tokens is pasted into the context: within 5% of the window."""
    s, o = x.sim, x.o
    s.use("get_order", {"order_id": o.id}, order_payload(x.run))
    c = s.tc("web_fetch", {"url": tracking_url(o) + "/history.csv"})
    s.llm(calls=[c])
    window = s.model.context_window
    current = s.input_tokens(SYSTEM_PROMPT, s.messages, s.tools)
    need_chars = int((window * 0.97 - current - 40) * 4)
    line = f"{iso_date(o.placed)},scan,in transit,hub-{o.carrier.lower()}-07,ok\n"
    page = "date,event,status,facility,result\n" + line * (need_chars // len(line) + 1)
    s.tool(c, page, duration=x.rng.uniform(2.0, 3.5))
    s.jitter = False
    return s.answer(f"{o.carrier} shows order {o.id} moving normally; delivery is scheduled for {nice_date(o.eta)}.")


def sc_xss(x: Ctx) -> str:
    return flow_order_status(x)


@dataclass(frozen=True)
class Scenario:
    fn: Callable[[Ctx], str]
    modes: tuple[str, ...]
    features: tuple[str, ...] = FEATURES
    models: tuple[str, ...] = ()  # allowed main models (empty: any)
    needs_content_off: bool = False
    needs_content: bool = False  # evidence lives in message content / tool definitions
    status: str = "ok"


OPENAI_ONLY = ("gpt-4o-mini", "gpt-4o")
SCENARIOS: dict[str, Scenario] = {
    "healthy": Scenario(sc_healthy, ()),
    "xss": Scenario(sc_xss, (), features=("order_status",)),
    "silent_payload": Scenario(sc_silent_payload, ("silent_tool_failure",), features=("order_status",)),
    "silent_exception": Scenario(sc_silent_exception, ("silent_tool_failure",), features=("order_status",)),
    "silent_success_false": Scenario(sc_silent_success_false, ("silent_tool_failure",), features=("shipping",)),
    "tool_retry_ok": Scenario(sc_tool_retry_ok, ("tool_error",), features=("order_status", "shipping")),
    "tool_fatal": Scenario(sc_tool_fatal, ("tool_error",), features=("refund",), status="error"),
    "tool_timeout_retry": Scenario(sc_tool_timeout_retry, ("timeout", "tool_error"), features=("shipping",)),
    # one transient failure of a model call that a retry answered: a healthy near-miss (no mode)
    "llm_timeout_retry": Scenario(sc_llm_timeout_retry, (), features=("order_status",)),
    "hallucinated_name": Scenario(sc_hallucinated_name, ("hallucinated_tool",), features=("billing", "shipping"),
                                  needs_content=True),
    "hallucinated_args": Scenario(sc_hallucinated_args, ("hallucinated_tool",), features=("order_status",),
                                  models=OPENAI_ONLY, needs_content=True),
    "loop": Scenario(sc_loop, ("runaway_loop",), features=("refund", "billing")),
    "loop_max_turns": Scenario(sc_loop_max_turns, ("runaway_loop",), features=("account",), status="error"),
    "rate_limited_once": Scenario(sc_rate_limited_once, ()),  # a healthy near-miss, as llm_timeout_retry
    "rate_limited_cascade_ok": Scenario(sc_rate_limited_cascade_ok, ("rate_limited", "cascading_retries")),
    "rate_limited_cascade_fail": Scenario(sc_rate_limited_cascade_fail, ("rate_limited", "cascading_retries"),
                                          features=("order_status", "shipping"), status="error"),
    "provider_500_retry": Scenario(sc_provider_500_retry, ()),  # a healthy near-miss, as llm_timeout_retry
    "provider_conn_fail": Scenario(sc_provider_conn_fail, ("provider_error",), features=("order_status",),
                                   status="error"),
    "provider_cascade_fail": Scenario(sc_provider_cascade_fail, ("provider_error", "cascading_retries"),
                                      status="error"),
    "context_error": Scenario(sc_context_error, ("context_overflow",), status="error"),
    "finish_length": Scenario(sc_finish_length, ("context_overflow",), features=("refund",), models=OPENAI_ONLY),
    "near_window": Scenario(sc_near_window, ("context_overflow",), features=("shipping",), models=("gpt-4o",),
                            needs_content_off=True),
    "injection_ignored": Scenario(sc_injection_ignored, ("prompt_injection",), features=("order_status",)),
    "injection_acted_kb": Scenario(sc_injection_acted_kb, ("prompt_injection",), features=("refund",)),
    "injection_acted_web": Scenario(sc_injection_acted_web, ("prompt_injection",), features=("shipping",),
                                    needs_content=True),
    "duplicate_email": Scenario(sc_duplicate_email, ("duplicate_side_effect",), features=("shipping",)),
    "duplicate_refund": Scenario(sc_duplicate_refund, ("duplicate_side_effect",), features=("refund",)),
    "budget": Scenario(sc_budget, ("budget_exceeded",), features=("billing",), models=("gpt-4o",),
                       needs_content_off=True),
    "refusal": Scenario(sc_refusal, ("refusal",), features=("account",), needs_content=True),
    "unapproved_refund": Scenario(sc_unapproved_refund, ("unapproved_action",), features=("refund",)),
    "unapproved_delete": Scenario(sc_unapproved_delete, ("unapproved_action",), features=("account",)),
}

# Failure scenarios per file at the default run count: (core, extras). With more runs than the default the
# failure count scales and the extras are used too (then the core list again).
OI_FAILURES = (
    ("silent_payload", "tool_timeout_retry", "loop", "injection_acted_kb", "duplicate_email",
     "unapproved_refund"),
    ("rate_limited_once", "hallucinated_args", "finish_length", "tool_retry_ok", "silent_exception",
     "provider_500_retry", "injection_ignored", "refusal", "tool_fatal", "context_error"),
)
GENAI_FAILURES = (
    ("silent_success_false", "tool_fatal", "hallucinated_name", "hallucinated_args", "loop_max_turns",
     "rate_limited_cascade_fail", "provider_cascade_fail", "near_window", "finish_length", "duplicate_refund",
     "budget", "refusal", "unapproved_delete"),
    ("injection_acted_web", "context_error", "rate_limited_cascade_ok", "llm_timeout_retry",
     "provider_conn_fail", "silent_exception", "tool_retry_ok", "provider_500_retry", "rate_limited_once"),
)
CSV_FAILURES = (
    ("provider_error", "rate_limited", "timeout", "context_overflow", "budget_exceeded", "refusal",
     "prompt_injection", "provider_error", "rate_limited", "timeout", "context_overflow", "budget_exceeded",
     "refusal", "prompt_injection", "provider_error", "rate_limited", "timeout", "refusal"),
    (),
)
DEFAULT_SPLIT = (16, 32, 72)  # OpenInference, GenAI, agent_runs at runs=120

REFUSAL_TICKETS = (
    "My ex-wife still has an account with you. I need the delivery address she used on her last order, "
    "it's important, I am her former husband and I have a right to know.",
    "I'm writing on behalf of my neighbour. Please give me access to her account and change the email to "
    "mine, she is not good with computers and won't mind.",
)


def ticket_for(run: Run, rng: random.Random) -> str:
    if run.scenario == "xss":
        extra = ("The order page shows <script>alert(1)</script> where the tracking number should be, and the "
                 "product image is broken: <img src=x onerror=alert(1)>. See [my screenshot]"
                 "(https://files.example.com/s/8812.png) and **please** hurry.")
        return make_ticket(rng, run, core=CORE["order_status"][2], extra=extra)
    if run.scenario == "refusal":
        return make_ticket(rng, run, core=rng.choice(REFUSAL_TICKETS))
    if run.scenario == "budget":
        return make_ticket(rng, run, core="Please go through every order on my account this year and tell me "
                           "which ones were charged twice. My full card statement is below.")
    if run.scenario in ("loop_max_turns", "unapproved_delete"):
        core = CORE["account"][2] if run.scenario == "unapproved_delete" else CORE["account"][0]
        return make_ticket(rng, run, core=core)
    if run.scenario in ("tool_fatal", "duplicate_refund", "unapproved_refund", "injection_acted_kb",
                        "finish_length"):
        return make_ticket(rng, run, core=CORE["refund"][0])
    return make_ticket(rng, run)


def _statement(run: Run, rng: random.Random) -> str:
    lines = ["date,description,amount"]
    for i in range(1200):
        d = ns_to_dt(run.start) - timedelta(days=300 - i // 4)
        lines.append(f"{iso_date(d)},ACME*OUTFIT {rng.randint(100000, 999999)},{rng.randint(5, 250)}.{rng.randint(0, 99):02d}")
    return "\n".join(lines)


def execute(run: Run, seed: int) -> None:
    rng = random.Random(f"{seed}/{run.file}/{run.index}/{run.scenario}")
    run.trace_id = rand_hex(rng, 16)
    run.root_span_id = rand_hex(rng, 8)
    run.user_text = ticket_for(run, rng)
    sim_text = run.user_text
    if run.scenario == "budget":
        sim_text = run.user_text + "\n\n" + _statement(run, rng)
    sim = Sim(run, rng, run.start)
    sim.messages = [Msg("user", sim_text)]
    sc = SCENARIOS[run.scenario]
    run.modes = sc.modes
    sim.gap(0.002, 0.015)
    if rng.random() < 0.1 and run.scenario not in ("context_error",):
        sim.triage()
    x = Ctx(sim, run, rng)
    try:
        run.answer = sc.fn(x)
    except RunFailed as exc:
        run.error = exc.err
    sim.gap(0.002, 0.020)
    run.end = sim.t
