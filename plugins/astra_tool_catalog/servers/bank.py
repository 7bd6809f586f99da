"""Personal banking: accounts, balances, transactions, disputes, transfers and exchange rates."""

from __future__ import annotations

import random
from typing import Any

from astra_tool_catalog.catalog_model import ServerSpec, State, ToolError, find, next_id
from astra_tool_catalog.schema_builders import array, integer, number, obj, params, string
from astra_tool_catalog.vocabulary import day, people, vocabulary

SERVER = ServerSpec(
    "bank",
    title="Personal Banking",
    description="Accounts, transactions, card disputes and transfers of a retail bank.",
    domain="finance",
)

ACCOUNT_ID = string("Bank account id, e.g. ACC-5012.")
TRANSACTION_ID = string("Transaction id, e.g. TX-70031.")
CURRENCIES = ["USD", "EUR", "GBP"]
TO_USD = {"USD": 1.0, "EUR": 1.08, "GBP": 1.27}


@SERVER.state
def build_state(rng: random.Random) -> State:
    accounts: list[dict[str, Any]] = []
    transactions: list[dict[str, Any]] = []
    disputes: list[dict[str, Any]] = []
    owners = [f"{f} {last}" for f, last in people(rng, 8)]
    for owner in owners:
        currency = rng.choice(CURRENCIES)
        for kind in ("checking", "savings"):
            account = {
                "account_id": f"ACC-{5001 + len(accounts)}",
                "owner_name": owner,
                "type": kind,
                "currency": currency,
                "balance": float(rng.randrange(400, 6000)),
            }
            accounts.append(account)
            for _ in range(rng.randint(4, 7)):
                merchant, category = rng.choice(vocabulary()["merchants"])
                transactions.append(
                    {
                        "transaction_id": f"TX-{70001 + len(transactions)}",
                        "account_id": account["account_id"],
                        "date": day(-rng.randint(1, 30)),
                        "amount": -round(rng.uniform(3, 180), 2),
                        "merchant": merchant,
                        "category": category,
                        "disputed": False,
                    }
                )
    for tx in rng.sample(transactions, 3):
        tx["disputed"] = True
        disputes.append(
            {
                "dispute_id": f"DSP-{401 + len(disputes)}",
                "transaction_id": tx["transaction_id"],
                "status": "under review",
                "opened_on": day(-2),
                "reason": "not recognised",
            }
        )
    return {
        "accounts": accounts,
        "transactions": transactions,
        "disputes": disputes,
        "transfers": [],
    }


@SERVER.scenario
def scenario(state: State, rng: random.Random) -> dict[str, Any]:
    account = rng.choice(state["accounts"])
    other = rng.choice([a for a in state["accounts"] if a["owner_name"] != account["owner_name"]])
    tx = rng.choice(
        [
            t
            for t in state["transactions"]
            if t["account_id"] == account["account_id"] and not t["disputed"]
        ]
    )
    return {
        "owner_name": account["owner_name"],
        "account_id": account["account_id"],
        "from_account_id": account["account_id"],
        "to_account_id": other["account_id"],
        "amount": float(rng.choice([20, 45, 75, 120, 250])),
        "transaction_id": tx["transaction_id"],
        "reason": rng.choice(
            ["I don't recognise this charge", "I was charged twice", "The order never arrived"]
        ),
        "dispute_id": rng.choice(state["disputes"])["dispute_id"],
        "from_currency": account["currency"],
        "to_currency": rng.choice([c for c in CURRENCIES if c != account["currency"]]),
    }


def _account(state: State, account_id: str) -> dict[str, Any]:
    return find(state, "accounts", "account_id", account_id, "account")


@SERVER.tool(
    "List the accounts held by a customer, by the owner's full name.",
    params({"owner_name": string("Full name of the account owner.")}),
    returns=obj(
        {
            "owner_name": string("Full name of the account owner."),
            "accounts": array(
                obj(
                    {
                        "account_id": ACCOUNT_ID,
                        "type": string("Account type.", enum=["checking", "savings"]),
                        "currency": string("Account currency code.", enum=CURRENCIES),
                    }
                ),
                "The owner's accounts.",
            ),
        }
    ),
    phrase="list the bank accounts of {owner_name}",
)
def list_accounts(state: State, owner_name: str) -> dict[str, Any]:
    rows = [a for a in state["accounts"] if a["owner_name"].lower() == owner_name.strip().lower()]
    if not rows:
        raise ToolError(f"no customer named {owner_name!r}")
    return {
        "owner_name": rows[0]["owner_name"],
        "accounts": [{k: a[k] for k in ("account_id", "type", "currency")} for a in rows],
    }


@SERVER.tool(
    "Get the current balance of an account.",
    params({"account_id": ACCOUNT_ID}),
    returns=obj(
        {
            "account_id": ACCOUNT_ID,
            "balance": number("Available balance."),
            "currency": string("Account currency code.", enum=CURRENCIES),
            "as_of": string("Date of the balance (YYYY-MM-DD)."),
        }
    ),
    phrase="check the balance of {account_id}",
)
def get_balance(state: State, account_id: str) -> dict[str, Any]:
    a = _account(state, account_id)
    return {
        "account_id": account_id,
        "balance": round(a["balance"], 2),
        "currency": a["currency"],
        "as_of": day(0),
    }


@SERVER.tool(
    "List the recent transactions of an account, newest first.",
    params(
        {"account_id": ACCOUNT_ID},
        {"limit": integer("Most transactions to return.", minimum=1, maximum=50)},
    ),
    returns=obj(
        {
            "account_id": ACCOUNT_ID,
            "transactions": array(
                obj(
                    {
                        "transaction_id": TRANSACTION_ID,
                        "date": string("Booking date (YYYY-MM-DD)."),
                        "amount": number("Signed amount; negative for payments."),
                        "merchant": string("Merchant or counterparty."),
                    }
                ),
                "Transactions, newest first.",
            ),
        }
    ),
    phrase="list the recent transactions on {account_id}",
)
def list_transactions(state: State, account_id: str, limit: int = 10) -> dict[str, Any]:
    _account(state, account_id)
    rows = [t for t in state["transactions"] if t["account_id"] == account_id]
    rows.sort(key=lambda t: (t["date"], t["transaction_id"]), reverse=True)
    keys = ("transaction_id", "date", "amount", "merchant")
    return {
        "account_id": account_id,
        "transactions": [{k: t[k] for k in keys} for t in rows][:limit],
    }


@SERVER.tool(
    "Get one transaction with its category and whether it is disputed.",
    params({"transaction_id": TRANSACTION_ID}),
    returns=obj(
        {
            "transaction_id": TRANSACTION_ID,
            "account_id": ACCOUNT_ID,
            "date": string("Booking date (YYYY-MM-DD)."),
            "amount": number("Signed amount; negative for payments."),
            "merchant": string("Merchant or counterparty."),
            "category": string("Spending category."),
            "disputed": {"type": "boolean", "description": "Whether a dispute is open."},
        }
    ),
    phrase="show me the details of {transaction_id}",
)
def get_transaction(state: State, transaction_id: str) -> dict[str, Any]:
    return dict(find(state, "transactions", "transaction_id", transaction_id, "transaction"))


@SERVER.tool(
    "Dispute a card payment the customer does not recognise.",
    params(
        {
            "transaction_id": TRANSACTION_ID,
            "reason": string("Why the customer disputes the payment."),
        }
    ),
    returns=obj(
        {
            "dispute_id": string("Dispute case id, e.g. DSP-404."),
            "transaction_id": TRANSACTION_ID,
            "status": string("Dispute status."),
        }
    ),
    phrase='dispute {transaction_id} because "{reason}"',
)
def dispute_transaction(state: State, transaction_id: str, reason: str) -> dict[str, Any]:
    tx = find(state, "transactions", "transaction_id", transaction_id, "transaction")
    if tx["disputed"]:
        raise ToolError(f"transaction {transaction_id} is already disputed")
    if tx["amount"] >= 0:
        raise ToolError(f"transaction {transaction_id} is a credit; only payments can be disputed")
    tx["disputed"] = True
    dispute = {
        "dispute_id": next_id(state, "DSP"),
        "transaction_id": transaction_id,
        "status": "under review",
        "opened_on": day(0),
        "reason": reason,
    }
    state["disputes"].append(dispute)
    return {k: dispute[k] for k in ("dispute_id", "transaction_id", "status")}


@SERVER.tool(
    "Get the status of a dispute case.",
    params({"dispute_id": string("Dispute case id, e.g. DSP-404.")}),
    returns=obj(
        {
            "dispute_id": string("Dispute case id."),
            "transaction_id": TRANSACTION_ID,
            "status": string("Dispute status."),
            "opened_on": string("Date the dispute was opened (YYYY-MM-DD)."),
        }
    ),
    phrase="check the status of {dispute_id}",
)
def get_dispute(state: State, dispute_id: str) -> dict[str, Any]:
    d = find(state, "disputes", "dispute_id", dispute_id, "dispute")
    return {k: d[k] for k in ("dispute_id", "transaction_id", "status", "opened_on")}


@SERVER.tool(
    "Transfer money between two accounts; the amount is in the source account's currency.",
    params(
        {
            "from_account_id": string("Id of the account to take the money from."),
            "to_account_id": string("Id of the account to send the money to."),
            "amount": number("Amount to transfer, in the source account's currency.", minimum=0.01),
        }
    ),
    returns=obj(
        {
            "transfer_id": string("Transfer id."),
            "from_account_id": string("Source account id."),
            "to_account_id": string("Destination account id."),
            "amount": number("Amount debited."),
            "currency": string("Currency of the amount.", enum=CURRENCIES),
            "new_balance": number("Balance of the source account after the transfer."),
        }
    ),
    phrase="transfer {amount} from {from_account_id} to {to_account_id}",
)
def transfer_funds(
    state: State, from_account_id: str, to_account_id: str, amount: float
) -> dict[str, Any]:
    source, target = _account(state, from_account_id), _account(state, to_account_id)
    if source is target:
        raise ToolError("source and destination are the same account")
    if source["balance"] < amount:
        raise ToolError(f"insufficient funds: balance is {source['balance']:.2f}")
    source["balance"] -= amount
    target["balance"] += amount * TO_USD[source["currency"]] / TO_USD[target["currency"]]
    transfer = {
        "transfer_id": next_id(state, "TRF"),
        "from_account_id": from_account_id,
        "to_account_id": to_account_id,
        "amount": amount,
        "currency": source["currency"],
        "new_balance": round(source["balance"], 2),
    }
    state["transfers"].append(transfer)
    return dict(transfer)


@SERVER.tool(
    "Get today's exchange rate between two currencies.",
    params(
        {
            "from_currency": string("Currency code to convert from.", enum=CURRENCIES),
            "to_currency": string("Currency code to convert to.", enum=CURRENCIES),
        }
    ),
    returns=obj(
        {
            "from_currency": string("Currency code converted from.", enum=CURRENCIES),
            "to_currency": string("Currency code converted to.", enum=CURRENCIES),
            "rate": number("Units of to_currency per unit of from_currency."),
        }
    ),
    phrase="get the exchange rate from {from_currency} to {to_currency}",
)
def get_exchange_rate(state: State, from_currency: str, to_currency: str) -> dict[str, Any]:
    return {
        "from_currency": from_currency,
        "to_currency": to_currency,
        "rate": round(TO_USD[from_currency] / TO_USD[to_currency], 4),
    }
