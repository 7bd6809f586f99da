"""A public library: the catalogue, members, loans, renewals and holds."""

from __future__ import annotations

import random
from typing import Any

from astra_tool_catalog.catalog_model import ServerSpec, State, ToolError, find, next_id
from astra_tool_catalog.schema_builders import array, integer, number, obj, params, string
from astra_tool_catalog.vocabulary import day, people, vocabulary

SERVER = ServerSpec(
    "library",
    title="City Library",
    description="Catalogue search, member accounts, loans and holds of a public library.",
    domain="education",
)

BOOK_ID = string("Catalogue id of a book, e.g. BK-112.")
MEMBER_ID = string("Library member id, e.g. MEM-7.")
LOAN_ID = string("Loan id, e.g. LN-3004.")
MAX_RENEWALS = 2


@SERVER.state
def build_state(rng: random.Random) -> State:
    books = [
        {
            "book_id": f"BK-{101 + i}",
            "title": title,
            "author": author,
            "genre": genre,
            "year": year,
            "isbn": f"978{rng.randint(0, 10**10 - 1):010d}",
            "copies": 0,
            "available": 0,
        }
        for i, (title, author, genre, year) in enumerate(vocabulary()["books"])
    ]
    for book in books:
        book["copies"] = book["available"] = rng.randint(2, 4)
    members = [
        {"member_id": f"MEM-{i + 1}", "name": f"{f} {last}", "card_number": f"C-{40000 + 37 * i}"}
        for i, (f, last) in enumerate(people(rng, 10))
    ]
    loans: list[dict[str, Any]] = []
    for member in members:
        # never take the last copy: every book stays borrowable at the start
        for book in rng.sample([b for b in books if b["available"] > 1], rng.randint(1, 3)):
            book["available"] -= 1
            loans.append(
                {
                    "loan_id": f"LN-{3001 + len(loans)}",
                    "book_id": book["book_id"],
                    "member_id": member["member_id"],
                    "due_date": day(rng.randint(-3, 20)),
                    "renewals": rng.choice([0, 0, 1]),
                    "returned": False,
                }
            )
    return {"books": books, "members": members, "loans": loans, "holds": []}


@SERVER.scenario
def scenario(state: State, rng: random.Random) -> dict[str, Any]:
    member = rng.choice(state["members"])
    book = rng.choice(state["books"])
    loans = [x for x in state["loans"] if x["member_id"] == member["member_id"]]
    return {
        "card_number": member["card_number"],
        "member_id": member["member_id"],
        "query": rng.choice([book["author"].split()[-1], book["genre"], book["title"].split()[-1]]),
        "book_id": book["book_id"],
        "loan_id": rng.choice(loans)["loan_id"],
    }


def _member(state: State, member_id: str) -> dict[str, Any]:
    return find(state, "members", "member_id", member_id, "member")


@SERVER.tool(
    "Search the catalogue by title, author or genre.",
    params({"query": string("Word or phrase from a title, an author's name or a genre.")}),
    returns=obj(
        {
            "books": array(
                obj(
                    {
                        "book_id": BOOK_ID,
                        "title": string("Book title."),
                        "author": string("Author."),
                        "year": integer("Year of first publication."),
                    }
                ),
                "Matching books, oldest first.",
            )
        }
    ),
    phrase='search the catalogue for "{query}"',
)
def search_books(state: State, query: str) -> dict[str, Any]:
    q = query.strip().lower()
    hits = [
        b
        for b in state["books"]
        if q and (q in b["title"].lower() or q in b["author"].lower() or q == b["genre"])
    ]
    hits.sort(key=lambda b: (b["year"], b["book_id"]))
    return {"books": [{k: b[k] for k in ("book_id", "title", "author", "year")} for b in hits]}


@SERVER.tool(
    "Get a book's catalogue record and how many copies are on the shelf.",
    params({"book_id": BOOK_ID}),
    returns=obj(
        {
            "book_id": BOOK_ID,
            "title": string("Book title."),
            "author": string("Author."),
            "genre": string("Genre."),
            "isbn": string("ISBN-13."),
            "available_copies": integer("Copies on the shelf now."),
        }
    ),
    phrase="get the catalogue record and availability of {book_id}",
)
def get_book(state: State, book_id: str) -> dict[str, Any]:
    b = find(state, "books", "book_id", book_id, "book")
    return {
        **{k: b[k] for k in ("book_id", "title", "author", "genre", "isbn")},
        "available_copies": b["available"],
    }


@SERVER.tool(
    "Find a member account by library card number.",
    params({"card_number": string("Library card number, e.g. C-40037.")}),
    returns=obj(
        {
            "member_id": MEMBER_ID,
            "name": string("Member's full name."),
            "active_loans": integer("Books the member has out."),
        }
    ),
    phrase="look up the member with library card {card_number}",
)
def find_member(state: State, card_number: str) -> dict[str, Any]:
    m = find(state, "members", "card_number", card_number.strip().upper(), "member")
    active = sum(
        1 for x in state["loans"] if x["member_id"] == m["member_id"] and not x["returned"]
    )
    return {"member_id": m["member_id"], "name": m["name"], "active_loans": active}


@SERVER.tool(
    "List a member's current loans with their due dates, soonest due first.",
    params({"member_id": MEMBER_ID}),
    returns=obj(
        {
            "member_id": MEMBER_ID,
            "loans": array(
                obj(
                    {
                        "loan_id": LOAN_ID,
                        "book_id": BOOK_ID,
                        "title": string("Book title."),
                        "due_date": string("Due date (YYYY-MM-DD)."),
                    }
                ),
                "Current loans.",
            ),
        }
    ),
    phrase="list the current loans of {member_id}",
)
def list_loans(state: State, member_id: str) -> dict[str, Any]:
    _member(state, member_id)
    rows = [x for x in state["loans"] if x["member_id"] == member_id and not x["returned"]]
    rows.sort(key=lambda x: (x["due_date"], x["loan_id"]))
    return {
        "member_id": member_id,
        "loans": [
            {
                "loan_id": x["loan_id"],
                "book_id": x["book_id"],
                "title": find(state, "books", "book_id", x["book_id"], "book")["title"],
                "due_date": x["due_date"],
            }
            for x in rows
        ],
    }


@SERVER.tool(
    "Borrow a book for a member; the loan lasts 21 days.",
    params({"book_id": BOOK_ID, "member_id": MEMBER_ID}),
    returns=obj(
        {
            "loan_id": LOAN_ID,
            "book_id": BOOK_ID,
            "member_id": MEMBER_ID,
            "due_date": string("Due date (YYYY-MM-DD)."),
        }
    ),
    phrase="borrow {book_id} for {member_id}",
)
def borrow_book(state: State, book_id: str, member_id: str) -> dict[str, Any]:
    book = find(state, "books", "book_id", book_id, "book")
    _member(state, member_id)
    if any(
        x["book_id"] == book_id and x["member_id"] == member_id and not x["returned"]
        for x in state["loans"]
    ):
        raise ToolError(f"member {member_id} already has {book_id} on loan")
    if book["available"] < 1:
        raise ToolError(f"no copy of {book_id} is on the shelf; place a hold instead")
    book["available"] -= 1
    loan = {
        "loan_id": next_id(state, "LN"),
        "book_id": book_id,
        "member_id": member_id,
        "due_date": day(21),
        "renewals": 0,
        "returned": False,
    }
    state["loans"].append(loan)
    return {k: loan[k] for k in ("loan_id", "book_id", "member_id", "due_date")}


@SERVER.tool(
    f"Renew a loan for 14 more days (at most {MAX_RENEWALS} renewals).",
    params({"loan_id": LOAN_ID}),
    returns=obj(
        {
            "loan_id": LOAN_ID,
            "due_date": string("New due date (YYYY-MM-DD)."),
            "renewals": integer("Renewals used so far."),
        }
    ),
    phrase="renew {loan_id}",
)
def renew_loan(state: State, loan_id: str) -> dict[str, Any]:
    loan = find(state, "loans", "loan_id", loan_id, "loan")
    if loan["returned"]:
        raise ToolError(f"loan {loan_id} was already returned")
    if loan["renewals"] >= MAX_RENEWALS:
        raise ToolError(f"loan {loan_id} was renewed {MAX_RENEWALS} times already")
    import datetime as dt

    due = dt.date.fromisoformat(max(loan["due_date"], day(0))) + dt.timedelta(days=14)
    loan["due_date"], loan["renewals"] = due.isoformat(), loan["renewals"] + 1
    return {"loan_id": loan_id, "due_date": loan["due_date"], "renewals": loan["renewals"]}


@SERVER.tool(
    "Return a borrowed book; late returns pay 0.25 per day.",
    params({"loan_id": LOAN_ID}),
    returns=obj(
        {
            "loan_id": LOAN_ID,
            "book_id": BOOK_ID,
            "returned_on": string("Return date (YYYY-MM-DD)."),
            "late_fee": number("Late fee owed."),
        }
    ),
    phrase="return the book of {loan_id}",
)
def return_book(state: State, loan_id: str) -> dict[str, Any]:
    import datetime as dt

    loan = find(state, "loans", "loan_id", loan_id, "loan")
    if loan["returned"]:
        raise ToolError(f"loan {loan_id} was already returned")
    loan["returned"] = True
    find(state, "books", "book_id", loan["book_id"], "book")["available"] += 1
    late = (dt.date.fromisoformat(day(0)) - dt.date.fromisoformat(loan["due_date"])).days
    return {
        "loan_id": loan_id,
        "book_id": loan["book_id"],
        "returned_on": day(0),
        "late_fee": round(max(late, 0) * 0.25, 2),
    }


@SERVER.tool(
    "Place a hold on a book for a member; they are told when a copy is ready.",
    params({"book_id": BOOK_ID, "member_id": MEMBER_ID}),
    returns=obj(
        {
            "hold_id": string("Hold id."),
            "book_id": BOOK_ID,
            "member_id": MEMBER_ID,
            "queue_position": integer("Position in the waiting list."),
        }
    ),
    phrase="place a hold on {book_id} for {member_id}",
)
def place_hold(state: State, book_id: str, member_id: str) -> dict[str, Any]:
    find(state, "books", "book_id", book_id, "book")
    _member(state, member_id)
    queue = [h for h in state["holds"] if h["book_id"] == book_id]
    if any(h["member_id"] == member_id for h in queue):
        raise ToolError(f"member {member_id} already holds {book_id}")
    hold = {
        "hold_id": next_id(state, "HLD"),
        "book_id": book_id,
        "member_id": member_id,
        "queue_position": len(queue) + 1,
    }
    state["holds"].append(hold)
    return dict(hold)
