"""Flight booking: airports, flight search, bookings, seats, baggage and flight status."""

from __future__ import annotations

import random
from typing import Any

from astra_tool_catalog.catalog_model import ServerSpec, State, ToolError, find, next_id
from astra_tool_catalog.schema_builders import DATE, array, integer, number, obj, params, string
from astra_tool_catalog.vocabulary import day, people, vocabulary

SERVER = ServerSpec(
    "flights",
    title="Flight Booking",
    description="Search flights between airports, book them and manage the bookings.",
    domain="travel",
)

FLIGHT_ID = string("Flight id from a search, e.g. FL-20412.")
BOOKING_ID = string("Booking reference, e.g. BKG-9001.")
SEAT_PREFERENCES = ["window", "aisle", "middle"]
TRAVEL_DAYS = range(7, 12)


@SERVER.state
def build_state(rng: random.Random) -> State:
    airports = [
        {"airport_code": c, "name": n, "city": city} for c, n, city in vocabulary()["airports"]
    ]
    flights: list[dict[str, Any]] = []
    for origin in airports:
        for destination in airports:
            if origin["city"] == destination["city"]:
                continue
            for offset in TRAVEL_DAYS:
                for _ in range(rng.randint(1, 2)):
                    depart = rng.randrange(6 * 60, 22 * 60, 15)
                    length = rng.randint(90, 780)
                    flights.append(
                        {
                            "flight_id": f"FL-{20001 + len(flights)}",
                            "airline": rng.choice(vocabulary()["airlines"]),
                            "origin": origin["airport_code"],
                            "destination": destination["airport_code"],
                            "date": day(offset),
                            "departure_time": f"{depart // 60:02d}:{depart % 60:02d}",
                            "duration_minutes": length,
                            "price_usd": float(rng.randrange(90, 1400, 5)),
                            "seats_left": rng.randint(4, 60),
                            "status": rng.choice(["on time", "on time", "on time", "delayed"]),
                            "gate": f"{rng.choice('ABCDE')}{rng.randint(1, 40)}",
                        }
                    )
    passengers = [f"{f} {last}" for f, last in people(rng, 8)]
    bookings: list[dict[str, Any]] = []
    for name in passengers[:5]:
        flight = rng.choice(flights)
        bookings.append(
            {
                "booking_id": f"BKG-{1001 + len(bookings)}",
                "flight_id": flight["flight_id"],
                "passenger_name": name,
                "seat": f"{rng.randint(5, 30)}{rng.choice('ABCDEF')}",
                "status": "confirmed",
                "checked_bags": rng.randint(0, 1),
                "price_usd": flight["price_usd"],
            }
        )
    return {
        "airports": airports,
        "flights": flights,
        "bookings": bookings,
        "passengers": passengers,
    }


@SERVER.scenario
def scenario(state: State, rng: random.Random) -> dict[str, Any]:
    origin = rng.choice(state["airports"])
    destination = rng.choice([a for a in state["airports"] if a["city"] != origin["city"]])
    date = day(rng.choice(list(TRAVEL_DAYS)))
    flight = next(
        f
        for f in state["flights"]
        if (f["origin"], f["destination"], f["date"])
        == (origin["airport_code"], destination["airport_code"], date)
    )
    return {
        "city": origin["city"],
        "origin": origin["airport_code"],
        "destination": destination["airport_code"],
        "date": date,
        "flight_id": flight["flight_id"],
        "passenger_name": rng.choice(state["passengers"]),
        "booking_id": rng.choice(state["bookings"])["booking_id"],
        "seat_preference": rng.choice(SEAT_PREFERENCES),
        "bags": rng.randint(1, 2),
    }


def _arrival(flight: dict[str, Any]) -> str:
    hours, minutes = flight["departure_time"].split(":")
    total = (int(hours) * 60 + int(minutes) + flight["duration_minutes"]) % (24 * 60)
    return f"{total // 60:02d}:{total % 60:02d}"


@SERVER.tool(
    "Find the airports that serve a city.",
    params({"city": string("City name, e.g. Lisbon.")}),
    returns=obj(
        {
            "airports": array(
                obj(
                    {
                        "airport_code": string("IATA code of the airport, e.g. LIS."),
                        "name": string("Airport name."),
                        "city": string("City the airport serves."),
                    }
                ),
                "Airports of the city.",
            )
        }
    ),
    phrase="find the airports of {city}",
)
def search_airports(state: State, city: str) -> dict[str, Any]:
    q = city.strip().lower()
    return {"airports": [dict(a) for a in state["airports"] if q and q == a["city"].lower()]}


@SERVER.tool(
    "Search the flights between two airports on a day, cheapest first.",
    params(
        {
            "origin": string("IATA code of the departure airport, e.g. LIS."),
            "destination": string("IATA code of the arrival airport, e.g. OSL."),
            "date": string("Travel day in YYYY-MM-DD format.", pattern=DATE),
        }
    ),
    returns=obj(
        {
            "flights": array(
                obj(
                    {
                        "flight_id": FLIGHT_ID,
                        "airline": string("Operating airline."),
                        "departure_time": string("Local departure time (HH:MM)."),
                        "arrival_time": string("Local arrival time (HH:MM)."),
                        "price_usd": number("Fare in USD."),
                        "seats_left": integer("Seats still for sale."),
                    }
                ),
                "Matching flights, cheapest first.",
            )
        }
    ),
    phrase="search flights from {origin} to {destination} on {date}",
)
def search_flights(state: State, origin: str, destination: str, date: str) -> dict[str, Any]:
    origin, destination = origin.strip().upper(), destination.strip().upper()
    for code in (origin, destination):
        find(state, "airports", "airport_code", code, "airport")
    if origin == destination:
        raise ToolError("origin and destination are the same airport")
    hits = [
        f
        for f in state["flights"]
        if (f["origin"], f["destination"], f["date"]) == (origin, destination, date)
    ]
    hits.sort(key=lambda f: (f["price_usd"], f["flight_id"]))
    keys = ("flight_id", "airline", "departure_time", "price_usd", "seats_left")
    return {"flights": [{**{k: f[k] for k in keys}, "arrival_time": _arrival(f)} for f in hits]}


@SERVER.tool(
    "Get the live status of a flight: on time or delayed, and its gate.",
    params({"flight_id": FLIGHT_ID}),
    returns=obj(
        {
            "flight_id": FLIGHT_ID,
            "status": string("Flight status."),
            "gate": string("Departure gate."),
            "delay_minutes": integer("Expected delay in minutes."),
        }
    ),
    phrase="check the status of {flight_id}",
)
def get_flight_status(state: State, flight_id: str) -> dict[str, Any]:
    f = find(state, "flights", "flight_id", flight_id, "flight")
    delay = (int(flight_id.split("-")[1]) % 7) * 10 + 15 if f["status"] == "delayed" else 0
    return {
        "flight_id": flight_id,
        "status": f["status"],
        "gate": f["gate"],
        "delay_minutes": delay,
    }


@SERVER.tool(
    "Book a seat on a flight for a passenger.",
    params(
        {
            "flight_id": FLIGHT_ID,
            "passenger_name": string("Full name of the passenger as on the passport."),
        }
    ),
    returns=obj(
        {
            "booking_id": BOOKING_ID,
            "flight_id": FLIGHT_ID,
            "passenger_name": string("Passenger name."),
            "seat": string("Assigned seat."),
            "status": string("Booking status."),
            "price_usd": number("Fare paid in USD."),
        }
    ),
    phrase="book {flight_id} for {passenger_name}",
)
def book_flight(state: State, flight_id: str, passenger_name: str) -> dict[str, Any]:
    f = find(state, "flights", "flight_id", flight_id, "flight")
    if f["seats_left"] < 1:
        raise ToolError(f"flight {flight_id} is sold out")
    f["seats_left"] -= 1
    booking = {
        "booking_id": next_id(state, "BKG"),
        "flight_id": flight_id,
        "passenger_name": passenger_name.strip(),
        "seat": f"{10 + f['seats_left'] % 20}{'ABCDEF'[f['seats_left'] % 6]}",
        "status": "confirmed",
        "checked_bags": 0,
        "price_usd": f["price_usd"],
    }
    state["bookings"].append(booking)
    return {
        k: booking[k]
        for k in ("booking_id", "flight_id", "passenger_name", "seat", "status", "price_usd")
    }


def _booking(state: State, booking_id: str) -> dict[str, Any]:
    return find(state, "bookings", "booking_id", booking_id.strip().upper(), "booking")


@SERVER.tool(
    "Get a booking: flight, passenger, seat, bags and status.",
    params({"booking_id": BOOKING_ID}),
    returns=obj(
        {
            "booking_id": BOOKING_ID,
            "flight_id": FLIGHT_ID,
            "passenger_name": string("Passenger name."),
            "seat": string("Assigned seat."),
            "checked_bags": integer("Checked bags on the booking."),
            "status": string("Booking status."),
        }
    ),
    phrase="show me {booking_id}",
)
def get_booking(state: State, booking_id: str) -> dict[str, Any]:
    b = _booking(state, booking_id)
    keys = ("booking_id", "flight_id", "passenger_name", "seat", "checked_bags", "status")
    return {k: b[k] for k in keys}


@SERVER.tool(
    "Choose a window, aisle or middle seat on a booking.",
    params(
        {
            "booking_id": BOOKING_ID,
            "seat_preference": string("Kind of seat wanted.", enum=SEAT_PREFERENCES),
        }
    ),
    returns=obj(
        {
            "booking_id": BOOKING_ID,
            "seat": string("Newly assigned seat."),
            "seat_preference": string("Kind of seat assigned.", enum=SEAT_PREFERENCES),
        }
    ),
    phrase="request a seat of type '{seat_preference}' on {booking_id}",
)
def select_seat(state: State, booking_id: str, seat_preference: str) -> dict[str, Any]:
    b = _booking(state, booking_id)
    if b["status"] != "confirmed":
        raise ToolError(f"booking {booking_id} is {b['status']}")
    letter = {"window": "A", "aisle": "C", "middle": "B"}[seat_preference]
    b["seat"] = f"{int(''.join(ch for ch in b['seat'] if ch.isdigit()) or 12)}{letter}"
    return {"booking_id": b["booking_id"], "seat": b["seat"], "seat_preference": seat_preference}


@SERVER.tool(
    "Add checked bags to a booking; each bag costs 35 USD.",
    params(
        {"booking_id": BOOKING_ID, "bags": integer("Number of bags to add.", minimum=1, maximum=3)}
    ),
    returns=obj(
        {
            "booking_id": BOOKING_ID,
            "checked_bags": integer("Checked bags now on the booking."),
            "fee_usd": number("Fee charged for the added bags."),
        }
    ),
    phrase="add {bags} checked bag(s) to {booking_id}",
)
def add_baggage(state: State, booking_id: str, bags: int) -> dict[str, Any]:
    b = _booking(state, booking_id)
    if b["status"] != "confirmed":
        raise ToolError(f"booking {booking_id} is {b['status']}")
    if b["checked_bags"] + bags > 3:
        raise ToolError("at most 3 checked bags per booking")
    b["checked_bags"] += bags
    return {
        "booking_id": b["booking_id"],
        "checked_bags": b["checked_bags"],
        "fee_usd": 35.0 * bags,
    }


@SERVER.tool(
    "Cancel a booking; the fare is refunded minus a 50 USD fee.",
    params({"booking_id": BOOKING_ID}),
    returns=obj(
        {
            "booking_id": BOOKING_ID,
            "status": string("New booking status."),
            "refund_usd": number("Amount refunded in USD."),
        }
    ),
    phrase="cancel {booking_id}",
)
def cancel_booking(state: State, booking_id: str) -> dict[str, Any]:
    b = _booking(state, booking_id)
    if b["status"] == "cancelled":
        raise ToolError(f"booking {booking_id} is already cancelled")
    b["status"] = "cancelled"
    find(state, "flights", "flight_id", b["flight_id"], "flight")["seats_left"] += 1
    return {
        "booking_id": b["booking_id"],
        "status": "cancelled",
        "refund_usd": max(b["price_usd"] - 50.0, 0.0),
    }
