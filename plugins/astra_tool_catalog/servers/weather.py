"""A weather service over a fixed table of cities: current conditions, forecasts, air quality,
sun times and alerts."""

from __future__ import annotations

import math
import random
from typing import Any

from astra_tool_catalog.catalog_model import ServerSpec, State, ToolError, find
from astra_tool_catalog.schema_builders import DATE, array, integer, number, obj, params, string
from astra_tool_catalog.vocabulary import day, vocabulary

SERVER = ServerSpec(
    "weather",
    title="Weather Service",
    description="Current weather, 10-day forecasts, air quality and alerts for world cities.",
    domain="weather",
)

LOCATION_ID = string("Location id returned by search_locations, e.g. LOC-104.")
CONDITIONS = ["sunny", "partly cloudy", "cloudy", "light rain", "showers", "windy"]
ALERTS = [
    ("UV index advisory", "minor"),
    ("heat advisory", "moderate"),
    ("pollen warning", "minor"),
    ("strong wind warning", "moderate"),
    ("heavy rain watch", "severe"),
]
HORIZON = 10


@SERVER.state
def build_state(rng: random.Random) -> State:
    locations: list[dict[str, Any]] = []
    alerts: list[dict[str, Any]] = []
    for i, (name, country, lat, lon, base) in enumerate(vocabulary()["cities"]):
        location_id = f"LOC-{101 + i}"
        days = []
        for offset in range(HORIZON):
            high = base + rng.randint(-4, 5)
            days.append(
                {
                    "date": day(offset),
                    "high_c": high,
                    "low_c": high - rng.randint(5, 11),
                    "condition": rng.choice(CONDITIONS),
                    "precipitation_mm": round(rng.choice([0, 0, 0.4, 2.5, 8.0]) * rng.random(), 1),
                }
            )
        locations.append(
            {
                "location_id": location_id,
                "name": name,
                "country": country,
                "lat": lat,
                "lon": lon,
                "days": days,
                "humidity_pct": rng.randint(25, 90),
                "wind_kph": rng.randint(3, 45),
                "aqi": rng.randint(12, 160),
            }
        )
        for event, severity in rng.sample(ALERTS, rng.randint(1, 2)):
            alerts.append(
                {
                    "alert_id": f"ALR-{501 + len(alerts)}",
                    "location_id": location_id,
                    "event": event,
                    "severity": severity,
                    "starts": day(rng.randint(0, 2)),
                    "ends": day(rng.randint(3, 5)),
                }
            )
    return {"locations": locations, "alerts": alerts}


@SERVER.scenario
def scenario(state: State, rng: random.Random) -> dict[str, Any]:
    location = rng.choice(state["locations"])
    alert = rng.choice([a for a in state["alerts"] if a["location_id"] == location["location_id"]])
    return {
        "query": location["name"],
        "location_id": location["location_id"],
        "days": rng.randint(2, 7),
        "date": day(rng.randint(0, HORIZON - 1)),
        "alert_id": alert["alert_id"],
    }


def _location(state: State, location_id: str) -> dict[str, Any]:
    return find(state, "locations", "location_id", location_id, "location")


def _aqi_category(aqi: int) -> str:
    for limit, label in ((50, "good"), (100, "moderate"), (150, "unhealthy for sensitive groups")):
        if aqi <= limit:
            return label
    return "unhealthy"


@SERVER.tool(
    "Search locations by city or country name.",
    params({"query": string("City or country name, or part of it.")}),
    returns=obj(
        {
            "locations": array(
                obj(
                    {
                        "location_id": LOCATION_ID,
                        "name": string("City name."),
                        "country": string("Country."),
                    }
                ),
                "Matching locations.",
            )
        }
    ),
    phrase='find the location "{query}" in the weather service',
)
def search_locations(state: State, query: str) -> dict[str, Any]:
    q = query.strip().lower()
    return {
        "locations": [
            {k: loc[k] for k in ("location_id", "name", "country")}
            for loc in state["locations"]
            if q and (q in loc["name"].lower() or q in loc["country"].lower())
        ]
    }


@SERVER.tool(
    "Get the current weather at a location.",
    params({"location_id": LOCATION_ID}),
    returns=obj(
        {
            "location_id": LOCATION_ID,
            "name": string("City name."),
            "temperature_c": number("Current temperature in degrees Celsius."),
            "condition": string("Sky condition."),
            "humidity_pct": integer("Relative humidity in percent."),
            "wind_kph": integer("Wind speed in km/h."),
        }
    ),
    phrase="tell me the current weather at {location_id}",
)
def get_current_weather(state: State, location_id: str) -> dict[str, Any]:
    loc = _location(state, location_id)
    today = loc["days"][0]
    return {
        "location_id": location_id,
        "name": loc["name"],
        "temperature_c": round((today["high_c"] * 2 + today["low_c"]) / 3, 1),
        "condition": today["condition"],
        "humidity_pct": loc["humidity_pct"],
        "wind_kph": loc["wind_kph"],
    }


@SERVER.tool(
    "Get the daily forecast for the next few days at a location.",
    params(
        {
            "location_id": LOCATION_ID,
            "days": integer("How many days to forecast, starting today.", minimum=1, maximum=10),
        }
    ),
    returns=obj(
        {
            "location_id": LOCATION_ID,
            "name": string("City name."),
            "days": array(
                obj(
                    {
                        "date": string("Forecast day (YYYY-MM-DD)."),
                        "high_c": number("Highest temperature in degrees Celsius."),
                        "low_c": number("Lowest temperature in degrees Celsius."),
                        "condition": string("Sky condition."),
                        "precipitation_mm": number("Expected precipitation in mm."),
                    }
                ),
                "One entry per day.",
            ),
        }
    ),
    phrase="get the {days}-day forecast for {location_id}",
)
def get_forecast(state: State, location_id: str, days: int) -> dict[str, Any]:
    loc = _location(state, location_id)
    return {
        "location_id": location_id,
        "name": loc["name"],
        "days": [dict(d) for d in loc["days"][:days]],
    }


@SERVER.tool(
    "Get the air quality index and its main pollutant at a location.",
    params({"location_id": LOCATION_ID}),
    returns=obj(
        {
            "location_id": LOCATION_ID,
            "aqi": integer("Air quality index (0-500)."),
            "category": string("Air quality category."),
            "dominant_pollutant": string("Pollutant that drives the index."),
        }
    ),
    phrase="check the air quality at {location_id}",
)
def get_air_quality(state: State, location_id: str) -> dict[str, Any]:
    loc = _location(state, location_id)
    pollutants = ["pm2.5", "ozone", "pm10", "no2"]
    return {
        "location_id": location_id,
        "aqi": loc["aqi"],
        "category": _aqi_category(loc["aqi"]),
        "dominant_pollutant": pollutants[loc["aqi"] % 4],
    }


@SERVER.tool(
    "Get sunrise and sunset times at a location on a day within the next 10 days.",
    params({"location_id": LOCATION_ID, "date": string("Day in YYYY-MM-DD format.", pattern=DATE)}),
    returns=obj(
        {
            "location_id": LOCATION_ID,
            "date": string("The day (YYYY-MM-DD)."),
            "sunrise": string("Local sunrise time (HH:MM)."),
            "sunset": string("Local sunset time (HH:MM)."),
            "daylight_hours": number("Hours of daylight."),
        }
    ),
    phrase="get sunrise and sunset times at {location_id} on {date}",
)
def get_sun_times(state: State, location_id: str, date: str) -> dict[str, Any]:
    loc = _location(state, location_id)
    if date not in {d["date"] for d in loc["days"]}:
        raise ToolError(f"sun times are only available for the next {HORIZON} days, not {date}")
    # day length near the June solstice from latitude (a standard approximation)
    decl = math.radians(23.0)
    lat = math.radians(max(min(loc["lat"], 66.0), -66.0))
    hours = 24 / math.pi * math.acos(max(-1.0, min(1.0, -math.tan(lat) * math.tan(decl))))
    noon = 13 * 60 + 10
    half = int(hours * 30)
    return {
        "location_id": location_id,
        "date": date,
        "sunrise": f"{(noon - half) // 60:02d}:{(noon - half) % 60:02d}",
        "sunset": f"{(noon + half) // 60:02d}:{(noon + half) % 60:02d}",
        "daylight_hours": round(hours, 1),
    }


@SERVER.tool(
    "List the active weather alerts at a location.",
    params({"location_id": LOCATION_ID}),
    returns=obj(
        {
            "location_id": LOCATION_ID,
            "alerts": array(
                obj(
                    {
                        "alert_id": string("Weather alert id, e.g. ALR-503."),
                        "event": string("What the alert is about."),
                        "severity": string("Alert severity."),
                    }
                ),
                "Active alerts.",
            ),
        }
    ),
    phrase="list the weather alerts for {location_id}",
)
def get_weather_alerts(state: State, location_id: str) -> dict[str, Any]:
    _location(state, location_id)
    return {
        "location_id": location_id,
        "alerts": [
            {k: a[k] for k in ("alert_id", "event", "severity")}
            for a in state["alerts"]
            if a["location_id"] == location_id
        ],
    }


@SERVER.tool(
    "Get the details of a weather alert: what, how severe and when it is in force.",
    params({"alert_id": string("Weather alert id, e.g. ALR-503.")}),
    returns=obj(
        {
            "alert_id": string("Weather alert id."),
            "location_id": LOCATION_ID,
            "event": string("What the alert is about."),
            "severity": string("Alert severity."),
            "starts": string("First day in force (YYYY-MM-DD)."),
            "ends": string("Last day in force (YYYY-MM-DD)."),
        }
    ),
    phrase="explain {alert_id}",
)
def get_alert_details(state: State, alert_id: str) -> dict[str, Any]:
    return dict(find(state, "alerts", "alert_id", alert_id, "weather alert"))
