"""A customer-support helpdesk: tickets, comments, assignment to agents and resolution."""

from __future__ import annotations

import random
from typing import Any

from astra_tool_catalog.catalog_model import ServerSpec, State, ToolError, find, next_id
from astra_tool_catalog.schema_builders import array, integer, obj, params, string
from astra_tool_catalog.vocabulary import day, email, people, vocabulary

SERVER = ServerSpec(
    "helpdesk",
    title="Support Helpdesk",
    description="Customer support tickets, their comments, priorities and the support agents.",
    domain="customer-support",
)

TICKET_ID = string("Support ticket id, e.g. TCK-2010.")
PRIORITIES = ["low", "normal", "high", "urgent"]
STATUS_ORDER = {"open": 0, "pending": 1, "closed": 2}


@SERVER.state
def build_state(rng: random.Random) -> State:
    teams = vocabulary()["support_teams"]
    agents = [
        {"agent_id": f"AGT-{31 + i}", "name": f"{f} {last}", "team": teams[i % len(teams)]}
        for i, (f, last) in enumerate(people(rng, 6))
    ]
    customers = [email(f, last, "mail.example") for f, last in people(rng, 8)]
    tickets = []
    for index in range(24):
        customer = customers[index % len(customers)]
        tickets.append(
            {
                "ticket_id": f"TCK-{2001 + index}",
                "subject": rng.choice(vocabulary()["ticket_subjects"]),
                "customer_email": customer,
                # the first ticket of each customer is still open: people ask about that one
                "status": "open"
                if index < len(customers)
                else rng.choice(["open", "pending", "closed", "closed"]),
                "priority": rng.choice(PRIORITIES[:3]),
                "assignee_id": rng.choice(agents)["agent_id"],
                "created": day(-rng.randint(1, 20)),
                "comments": [],
            }
        )
    return {"agents": agents, "customers": customers, "tickets": tickets}


@SERVER.scenario
def scenario(state: State, rng: random.Random) -> dict[str, Any]:
    customer = rng.choice(state["customers"])
    # people ask about tickets that are still in progress
    ticket = rng.choice(
        [t for t in state["tickets"] if t["customer_email"] == customer and t["status"] != "closed"]
    )
    return {
        "customer_email": customer,
        "ticket_id": ticket["ticket_id"],
        "team": rng.choice(vocabulary()["support_teams"]),
        "agent_id": rng.choice(state["agents"])["agent_id"],
        "comment": rng.choice(
            [
                "Customer called again about this.",
                "Asked for screenshots of the error.",
                "Workaround sent by email.",
            ]
        ),
        "new_priority": rng.choice(["high", "urgent"]),
        "resolution": rng.choice(
            ["Fixed in the latest release.", "Refund issued.", "Password reset completed."]
        ),
        "subject": rng.choice(vocabulary()["ticket_subjects"]),
        "priority": rng.choice(PRIORITIES),
    }


def _ticket(state: State, ticket_id: str) -> dict[str, Any]:
    return find(state, "tickets", "ticket_id", ticket_id.strip().upper(), "ticket")


@SERVER.tool(
    "List the support tickets of a customer, open ones first.",
    params({"customer_email": string("Email address of the customer.")}),
    returns=obj(
        {
            "tickets": array(
                obj(
                    {
                        "ticket_id": TICKET_ID,
                        "subject": string("Ticket subject."),
                        "status": string("Ticket status."),
                        "priority": string("Ticket priority.", enum=PRIORITIES),
                    }
                ),
                "The customer's tickets.",
            )
        }
    ),
    phrase="list the support tickets of {customer_email}",
)
def search_tickets(state: State, customer_email: str) -> dict[str, Any]:
    rows = [t for t in state["tickets"] if t["customer_email"] == customer_email.strip().lower()]
    rows.sort(key=lambda t: (STATUS_ORDER[t["status"]], t["ticket_id"]))
    keys = ("ticket_id", "subject", "status", "priority")
    return {"tickets": [{k: t[k] for k in keys} for t in rows]}


@SERVER.tool(
    "Get a ticket with its status, priority, assignee and comments.",
    params({"ticket_id": TICKET_ID}),
    returns=obj(
        {
            "ticket_id": TICKET_ID,
            "subject": string("Ticket subject."),
            "customer_email": string("Email address of the customer."),
            "status": string("Ticket status."),
            "priority": string("Ticket priority.", enum=PRIORITIES),
            "assignee_id": string("Id of the support agent handling the ticket."),
            "comments": array(string("A comment."), "Internal comments, oldest first."),
        }
    ),
    phrase="open {ticket_id}",
)
def get_ticket(state: State, ticket_id: str) -> dict[str, Any]:
    t = _ticket(state, ticket_id)
    keys = ("ticket_id", "subject", "customer_email", "status", "priority", "assignee_id")
    return {**{k: t[k] for k in keys}, "comments": list(t["comments"])}


@SERVER.tool(
    "List the support agents of a team with their open ticket counts, least busy first.",
    params({"team": string("Support team.", enum=vocabulary()["support_teams"])}),
    returns=obj(
        {
            "team": string("Support team."),
            "agents": array(
                obj(
                    {
                        "agent_id": string("Support agent id, e.g. AGT-33."),
                        "name": string("Agent name."),
                        "open_tickets": integer("Open tickets assigned to the agent."),
                    }
                ),
                "Agents of the team.",
            ),
        }
    ),
    phrase="list the agents of the {team} team",
)
def list_agents(state: State, team: str) -> dict[str, Any]:
    rows = []
    for a in state["agents"]:
        if a["team"] == team:
            load = sum(
                1
                for t in state["tickets"]
                if t["assignee_id"] == a["agent_id"] and t["status"] != "closed"
            )
            rows.append({"agent_id": a["agent_id"], "name": a["name"], "open_tickets": load})
    rows.sort(key=lambda r: (r["open_tickets"], r["agent_id"]))
    return {"team": team, "agents": rows}


@SERVER.tool(
    "Assign a ticket to a support agent.",
    params(
        {
            "ticket_id": TICKET_ID,
            "agent_id": string("Id of the support agent to assign, e.g. AGT-33."),
        }
    ),
    returns=obj(
        {
            "ticket_id": TICKET_ID,
            "assignee_id": string("Id of the support agent now handling the ticket."),
            "status": string("Ticket status."),
        }
    ),
    phrase="assign {ticket_id} to {agent_id}",
)
def assign_ticket(state: State, ticket_id: str, agent_id: str) -> dict[str, Any]:
    t = _ticket(state, ticket_id)
    find(state, "agents", "agent_id", agent_id, "support agent")
    if t["status"] == "closed":
        raise ToolError(f"ticket {t['ticket_id']} is closed")
    t["assignee_id"] = agent_id
    return {"ticket_id": t["ticket_id"], "assignee_id": agent_id, "status": t["status"]}


@SERVER.tool(
    "Add an internal comment to a ticket.",
    params({"ticket_id": TICKET_ID, "comment": string("Text of the comment.")}),
    returns=obj(
        {
            "ticket_id": TICKET_ID,
            "comment_id": string("Id of the new comment."),
            "comment_count": integer("Comments on the ticket now."),
        }
    ),
    phrase='add the comment "{comment}" to {ticket_id}',
)
def add_comment(state: State, ticket_id: str, comment: str) -> dict[str, Any]:
    t = _ticket(state, ticket_id)
    t["comments"].append(comment)
    return {
        "ticket_id": t["ticket_id"],
        "comment_id": next_id(state, "CMT"),
        "comment_count": len(t["comments"]),
    }


@SERVER.tool(
    "Change the priority of a ticket.",
    params(
        {"ticket_id": TICKET_ID, "new_priority": string("The priority to set.", enum=PRIORITIES)}
    ),
    returns=obj(
        {
            "ticket_id": TICKET_ID,
            "priority": string("Ticket priority now.", enum=PRIORITIES),
            "previous_priority": string("Priority before the change.", enum=PRIORITIES),
        }
    ),
    phrase="set the priority of {ticket_id} to {new_priority}",
)
def set_priority(state: State, ticket_id: str, new_priority: str) -> dict[str, Any]:
    t = _ticket(state, ticket_id)
    previous, t["priority"] = t["priority"], new_priority
    return {"ticket_id": t["ticket_id"], "priority": new_priority, "previous_priority": previous}


@SERVER.tool(
    "Close a ticket with a resolution note.",
    params({"ticket_id": TICKET_ID, "resolution": string("How the problem was solved.")}),
    returns=obj(
        {
            "ticket_id": TICKET_ID,
            "status": string("Ticket status."),
            "closed_on": string("Closing date (YYYY-MM-DD)."),
        }
    ),
    phrase='close {ticket_id} with the resolution "{resolution}"',
)
def close_ticket(state: State, ticket_id: str, resolution: str) -> dict[str, Any]:
    t = _ticket(state, ticket_id)
    if t["status"] == "closed":
        raise ToolError(f"ticket {t['ticket_id']} is already closed")
    t["status"] = "closed"
    t["comments"].append(f"Resolution: {resolution}")
    return {"ticket_id": t["ticket_id"], "status": "closed", "closed_on": day(0)}


@SERVER.tool(
    "Open a new support ticket for a customer.",
    params(
        {
            "customer_email": string("Email address of the customer."),
            "subject": string("Short summary of the problem."),
            "priority": string("Ticket priority.", enum=PRIORITIES),
        }
    ),
    returns=obj(
        {
            "ticket_id": TICKET_ID,
            "status": string("Ticket status."),
            "priority": string("Ticket priority.", enum=PRIORITIES),
        }
    ),
    phrase='open a {priority}-priority ticket for {customer_email} about "{subject}"',
)
def create_ticket(state: State, customer_email: str, subject: str, priority: str) -> dict[str, Any]:
    if "@" not in customer_email:
        raise ToolError(f"{customer_email!r} is not an email address")
    t = {
        "ticket_id": next_id(state, "TCK"),
        "subject": subject,
        "customer_email": customer_email.strip().lower(),
        "status": "open",
        "priority": priority,
        "assignee_id": "AGT-31",
        "created": day(0),
        "comments": [],
    }
    state["tickets"].append(t)
    return {"ticket_id": t["ticket_id"], "status": "open", "priority": priority}
