"""A work calendar: events, free slots and contacts to invite."""

from __future__ import annotations

import random
from typing import Any

from astra_tool_catalog.catalog_model import ServerSpec, State, ToolError, find, next_id
from astra_tool_catalog.schema_builders import DATE, TIME, array, integer, obj, params, string
from astra_tool_catalog.vocabulary import day, email, people, vocabulary

SERVER = ServerSpec(
    "calendar",
    title="Team Calendar",
    description="Meetings and appointments of a work calendar, with the address book.",
    domain="productivity",
)

EVENT_ID = string("Calendar event id, e.g. EVT-1012.")
DATE_ARG = string("Day in YYYY-MM-DD format.", pattern=DATE)
DAY_START, DAY_END = 9 * 60, 18 * 60


def _minutes(clock: str) -> int:
    hours, minutes = clock.split(":")
    return int(hours) * 60 + int(minutes)


def _clock(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def _end(event: dict[str, Any]) -> str:
    return _clock(_minutes(event["start_time"]) + event["duration_minutes"])


@SERVER.state
def build_state(rng: random.Random) -> State:
    contacts = [
        {
            "contact_id": f"CON-{11 + i}",
            "name": f"{f} {last}",
            "email": email(f, last, "corp.example"),
        }
        for i, (f, last) in enumerate(people(rng, 10))
    ]
    events: list[dict[str, Any]] = []
    for offset in range(10):  # two working weeks from 'today'
        if offset % 7 in (5, 6):
            continue
        starts = sorted(rng.sample(range(DAY_START, DAY_END - 60, 30), rng.randint(2, 4)))
        last_end = 0
        for start in starts:
            if start < last_end:
                continue
            duration = rng.choice([30, 45, 60])
            last_end = start + duration
            events.append(
                {
                    "event_id": f"EVT-{1001 + len(events)}",
                    "title": rng.choice(vocabulary()["meeting_titles"]),
                    "date": day(offset),
                    "start_time": _clock(start),
                    "duration_minutes": duration,
                    "location": rng.choice(vocabulary()["locations"]),
                    # only the first six contacts are already invited somewhere
                    "attendees": [c["email"] for c in rng.sample(contacts[:6], 2)],
                    "status": "confirmed",
                }
            )
    return {"contacts": contacts, "events": events}


@SERVER.scenario
def scenario(state: State, rng: random.Random) -> dict[str, Any]:
    event = rng.choice(state["events"])
    guest = rng.choice(state["contacts"][6:])
    other_day = rng.choice(sorted({e["date"] for e in state["events"]} - {event["date"]}))
    return {
        "date": event["date"],
        "event_id": event["event_id"],
        "duration_minutes": rng.choice([30, 45, 60]),
        "title": rng.choice(vocabulary()["meeting_titles"]),
        "start_time": rng.choice(["10:00", "11:30", "14:00", "16:30"]),
        "new_date": other_day,
        "new_start_time": rng.choice(["09:30", "13:00", "15:30"]),
        "email": guest["email"],
        "name": guest["name"].split()[0],
    }


def _summary(event: dict[str, Any]) -> dict[str, Any]:
    return {
        "event_id": event["event_id"],
        "title": event["title"],
        "start_time": event["start_time"],
        "end_time": _end(event),
    }


@SERVER.tool(
    "List the events on a given day, in start-time order.",
    params({"date": DATE_ARG}),
    returns=obj(
        {
            "date": string("The listed day (YYYY-MM-DD)."),
            "events": array(
                obj(
                    {
                        "event_id": EVENT_ID,
                        "title": string("Event title."),
                        "start_time": string("Start time (HH:MM)."),
                        "end_time": string("End time (HH:MM)."),
                    }
                ),
                "Events that day.",
            ),
        }
    ),
    phrase="list my events on {date}",
)
def list_events(state: State, date: str) -> dict[str, Any]:
    rows = [e for e in state["events"] if e["date"] == date and e["status"] == "confirmed"]
    rows.sort(key=lambda e: e["start_time"])
    return {"date": date, "events": [_summary(e) for e in rows]}


@SERVER.tool(
    "Get an event with its time, location and attendees.",
    params({"event_id": EVENT_ID}),
    returns=obj(
        {
            "event_id": EVENT_ID,
            "title": string("Event title."),
            "date": string("Day of the event (YYYY-MM-DD)."),
            "start_time": string("Start time (HH:MM)."),
            "end_time": string("End time (HH:MM)."),
            "location": string("Where the event takes place."),
            "attendees": array(string("Attendee email address."), "Invited people."),
        }
    ),
    phrase="show me the details of {event_id}",
)
def get_event(state: State, event_id: str) -> dict[str, Any]:
    e = find(state, "events", "event_id", event_id, "event")
    keys = ("event_id", "title", "date", "start_time")
    return {
        **{k: e[k] for k in keys},
        "end_time": _end(e),
        "location": e["location"],
        "attendees": list(e["attendees"]),
    }


@SERVER.tool(
    "Find free time slots of at least a given length on a day, within working hours 09:00-18:00.",
    params(
        {
            "date": DATE_ARG,
            "duration_minutes": integer(
                "Length of the slot needed, in minutes.", minimum=15, maximum=240
            ),
        }
    ),
    returns=obj(
        {
            "date": string("The searched day (YYYY-MM-DD)."),
            "duration_minutes": integer("Length of the slot needed, in minutes."),
            "slots": array(
                obj(
                    {
                        "start_time": string("Start of a free slot (HH:MM)."),
                        "end_time": string("End of the free slot (HH:MM)."),
                    }
                ),
                "Free slots, earliest first.",
            ),
        }
    ),
    phrase="find a free {duration_minutes}-minute slot on {date}",
)
def find_free_slots(state: State, date: str, duration_minutes: int) -> dict[str, Any]:
    busy = sorted(
        (_minutes(e["start_time"]), _minutes(_end(e)))
        for e in state["events"]
        if e["date"] == date and e["status"] == "confirmed"
    )
    slots, cursor = [], DAY_START
    for start, end in [*busy, (DAY_END, DAY_END)]:
        if start - cursor >= duration_minutes:
            slots.append({"start_time": _clock(cursor), "end_time": _clock(start)})
        cursor = max(cursor, end)
    return {"date": date, "duration_minutes": duration_minutes, "slots": slots}


@SERVER.tool(
    "Create a calendar event.",
    params(
        {
            "title": string("Title of the new event."),
            "date": DATE_ARG,
            "start_time": string("Start time in HH:MM (24-hour).", pattern=TIME),
            "duration_minutes": integer("Length of the event in minutes.", minimum=15, maximum=480),
        },
        {"location": string("Where the event takes place.")},
    ),
    returns=obj(
        {
            "event_id": EVENT_ID,
            "title": string("Event title."),
            "date": string("Day of the event (YYYY-MM-DD)."),
            "start_time": string("Start time (HH:MM)."),
            "end_time": string("End time (HH:MM)."),
        }
    ),
    phrase='schedule "{title}" on {date} at {start_time} for {duration_minutes} minutes',
)
def create_event(
    state: State,
    title: str,
    date: str,
    start_time: str,
    duration_minutes: int,
    location: str = "Video call",
) -> dict[str, Any]:
    event = {
        "event_id": next_id(state, "EVT"),
        "title": title,
        "date": date,
        "start_time": start_time,
        "duration_minutes": duration_minutes,
        "location": location,
        "attendees": [],
        "status": "confirmed",
    }
    state["events"].append(event)
    return {**_summary(event), "date": date}


@SERVER.tool(
    "Move an event to another day and start time, keeping its length.",
    params(
        {
            "event_id": EVENT_ID,
            "new_date": string("The day to move the event to (YYYY-MM-DD).", pattern=DATE),
            "new_start_time": string("The new start time (HH:MM, 24-hour).", pattern=TIME),
        }
    ),
    returns=obj(
        {
            "event_id": EVENT_ID,
            "date": string("New day of the event (YYYY-MM-DD)."),
            "start_time": string("New start time (HH:MM)."),
            "end_time": string("New end time (HH:MM)."),
        }
    ),
    phrase="move {event_id} to {new_date} at {new_start_time}",
)
def reschedule_event(
    state: State, event_id: str, new_date: str, new_start_time: str
) -> dict[str, Any]:
    e = find(state, "events", "event_id", event_id, "event")
    if e["status"] != "confirmed":
        raise ToolError(f"event {event_id} is cancelled")
    e["date"], e["start_time"] = new_date, new_start_time
    return {
        "event_id": event_id,
        "date": new_date,
        "start_time": new_start_time,
        "end_time": _end(e),
    }


@SERVER.tool(
    "Cancel an event and notify its attendees.",
    params({"event_id": EVENT_ID}),
    returns=obj(
        {
            "event_id": EVENT_ID,
            "title": string("Event title."),
            "status": string("New status of the event."),
            "notified": integer("Attendees notified."),
        }
    ),
    phrase="cancel {event_id}",
)
def cancel_event(state: State, event_id: str) -> dict[str, Any]:
    e = find(state, "events", "event_id", event_id, "event")
    if e["status"] == "cancelled":
        raise ToolError(f"event {event_id} is already cancelled")
    e["status"] = "cancelled"
    return {
        "event_id": event_id,
        "title": e["title"],
        "status": "cancelled",
        "notified": len(e["attendees"]),
    }


@SERVER.tool(
    "Search the address book by first or last name.",
    params({"name": string("First or last name to look for.")}),
    returns=obj(
        {
            "contacts": array(
                obj(
                    {
                        "contact_id": string("Contact id."),
                        "name": string("Full name."),
                        "email": string("Email address of the contact."),
                    }
                ),
                "Matching contacts.",
            )
        }
    ),
    phrase="find {name} in my contacts",
)
def search_contacts(state: State, name: str) -> dict[str, Any]:
    q = name.strip().lower()
    return {
        "contacts": [dict(c) for c in state["contacts"] if q and q in c["name"].lower().split()]
    }


@SERVER.tool(
    "Invite someone to an event by email.",
    params({"event_id": EVENT_ID, "email": string("Email address of the person to invite.")}),
    returns=obj(
        {
            "event_id": EVENT_ID,
            "attendees": array(string("Attendee email address."), "Everyone now invited."),
        }
    ),
    phrase="invite {email} to {event_id}",
)
def add_attendee(state: State, event_id: str, email: str) -> dict[str, Any]:
    e = find(state, "events", "event_id", event_id, "event")
    if email in e["attendees"]:
        raise ToolError(f"{email} is already invited to {event_id}")
    e["attendees"].append(email)
    return {"event_id": event_id, "attendees": list(e["attendees"])}
