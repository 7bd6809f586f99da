"""The relation templates of the offline world: each one is a lookup tool.

A relation maps an entity of kind ``subject`` (looked up by name) to a value: another entity
(``value`` is an entity kind) or an attribute (``year``, ``count``, ``money``, ``label``). The
relations between kinds of the *question world* (people, companies, cities, countries, products)
are chained into multi-hop questions (a city's weather too); the others (teams, airports, banks,
...) exist only as distractor tools from other domains. Tool names and docs are fixed per
relation, so the same tool reappears across arenas with fresh data.
"""

from __future__ import annotations

import attrs

# Entity kinds the questions are built from; the others only appear in distractor tools.
WORLD_KINDS: tuple[str, ...] = ("person", "company", "city", "country", "product")
ATTRIBUTE_KINDS: tuple[str, ...] = ("year", "count", "money", "label")
NUMERIC_KINDS: tuple[str, ...] = ("year", "count", "money")


@attrs.frozen
class Relation:
    """One lookup-tool template. ``noun`` reads in a question as "the {noun} of X"."""

    name: str
    domain: str
    subject: str
    value: str
    noun: str
    field: str
    description: str
    low: int = 0
    high: int = 0
    choices: tuple[str, ...] = ()
    param: str = ""

    @property
    def parameter(self) -> str:
        return self.param or f"{self.subject}_name"

    @property
    def is_entity(self) -> bool:
        return self.value not in ATTRIBUTE_KINDS

    @property
    def is_numeric(self) -> bool:
        return self.value in NUMERIC_KINDS

    @property
    def in_world(self) -> bool:
        return self.subject in WORLD_KINDS and (not self.is_entity or self.value in WORLD_KINDS)

    def schema(self) -> dict:
        """The OpenAI tool schema of this relation's lookup tool."""
        subject_words = self.subject.replace("_", " ")
        param_help = (
            "The ticker symbol of the stock, e.g. ABCD."
            if self.param == "ticker_symbol"
            else f"The full name of the {subject_words}, exactly as written."
        )
        return {
            "type": "function",
            "function": {
                "name": self.name,
                "description": self.description,
                "parameters": {
                    "type": "object",
                    "properties": {self.parameter: {"type": "string", "description": param_help}},
                    "required": [self.parameter],
                    "additionalProperties": False,
                },
            },
        }


def _r(
    name: str,
    domain: str,
    subject: str,
    value: str,
    noun: str,
    field: str,
    description: str,
    low: int = 0,
    high: int = 0,
    choices: tuple[str, ...] = (),
    param: str = "",
) -> Relation:
    return Relation(
        name, domain, subject, value, noun, field, description, low, high, choices, param
    )


RELATIONS: tuple[Relation, ...] = (
    # --- question world ---------------------------------------------------------------------
    _r("get_person_employer", "people", "person", "company", "employer", "employer",
       "Look up the company a person works for, by the person's full name."),
    _r("get_person_home_city", "people", "person", "city", "home city", "home_city",
       "Look up the city a person lives in, by the person's full name."),
    _r("get_person_birth_year", "people", "person", "year", "birth year", "birth_year",
       "Look up the year a person was born, by the person's full name.", 1940, 2004),
    _r("get_person_height_cm", "people", "person", "count", "height in centimetres", "height_cm",
       "Look up a person's height in centimetres, by the person's full name.", 150, 205),
    _r("get_company_headquarters", "business", "company", "city", "headquarters city",
       "headquarters_city", "Look up the city where a company has its headquarters."),
    _r("get_company_ceo", "business", "company", "person", "CEO", "ceo",
       "Look up the chief executive officer (CEO) of a company, by the company's name."),
    _r("get_company_founding_year", "business", "company", "year", "founding year",
       "founding_year", "Look up the year a company was founded.", 1850, 2020),
    _r("get_company_employee_count", "business", "company", "count", "number of employees",
       "employee_count", "Look up how many employees a company has.", 40, 250000),
    _r("get_company_flagship_product", "business", "company", "product", "flagship product",
       "flagship_product", "Look up the best-known product a company makes."),
    _r("get_city_country", "cities", "city", "country", "country", "country",
       "Look up the country a city is located in, by the city's name."),
    _r("get_city_population", "cities", "city", "count", "population", "population",
       "Look up the number of inhabitants of a city, by the city's name.", 15000, 9500000),
    _r("get_city_mayor", "cities", "city", "person", "mayor", "mayor",
       "Look up the current mayor of a city, by the city's name."),
    _r("get_city_elevation_m", "cities", "city", "count", "elevation in metres", "elevation_m",
       "Look up a city's elevation above sea level in metres.", 2, 3600),
    _r("get_country_capital", "countries", "country", "city", "capital", "capital",
       "Look up the capital city of a country, by the country's name."),
    _r("get_country_currency", "countries", "country", "currency", "currency", "currency",
       "Look up the official currency of a country, by the country's name."),
    _r("get_country_population", "countries", "country", "count", "population", "population",
       "Look up the number of inhabitants of a country.", 300000, 150000000),
    _r("get_product_maker", "retail", "product", "company", "maker", "maker",
       "Look up the company that makes a product, by the product's name."),
    _r("get_product_price_usd", "retail", "product", "money", "price in US dollars", "price_usd",
       "Look up the retail price of a product in US dollars.", 5, 3000),
    _r("get_product_release_year", "retail", "product", "year", "release year", "release_year",
       "Look up the year a product was first released.", 1990, 2024),
    _r("get_product_weight_g", "retail", "product", "count", "weight in grams", "weight_g",
       "Look up the weight of a product in grams.", 20, 25000),
    # --- other domains (those over a city are asked about too) ----------------------------
    _r("get_team_home_city", "sports", "team", "city", "home city", "home_city",
       "Look up the city a sports team plays its home games in."),
    _r("get_team_founding_year", "sports", "team", "year", "founding year", "founding_year",
       "Look up the year a sports team was founded.", 1870, 2015),
    _r("get_team_head_coach", "sports", "team", "person", "head coach", "head_coach",
       "Look up the head coach of a sports team, by the team's name."),
    _r("get_team_stadium_capacity", "sports", "team", "count", "stadium capacity",
       "stadium_capacity", "Look up how many spectators a team's stadium holds.", 5000, 99000),
    _r("get_airport_city", "travel", "airport", "city", "city", "city",
       "Look up the city an airport serves, by the airport's name."),
    _r("get_airport_runway_count", "travel", "airport", "count", "number of runways",
       "runway_count", "Look up how many runways an airport has.", 1, 6),
    _r("get_airline_headquarters", "travel", "airline", "city", "headquarters city",
       "headquarters_city", "Look up the city where an airline has its headquarters."),
    _r("get_flight_duration_minutes", "travel", "flight", "count", "duration in minutes",
       "duration_minutes", "Look up the scheduled duration of a flight in minutes.", 35, 900,
       (), "flight_number"),
    _r("get_university_founding_year", "education", "university", "year", "founding year",
       "founding_year", "Look up the year a university was founded.", 1100, 2010),
    _r("get_university_enrollment", "education", "university", "count", "enrollment",
       "enrollment", "Look up how many students are enrolled at a university.", 800, 90000),
    _r("get_university_rector", "education", "university", "person", "rector", "rector",
       "Look up the rector who leads a university, by the university's name."),
    _r("get_university_city", "education", "university", "city", "city", "city",
       "Look up the city a university is located in."),
    _r("get_artist_birth_year", "music", "artist", "year", "birth year", "birth_year",
       "Look up the year a musical artist was born.", 1930, 2005),
    _r("get_artist_record_label", "music", "artist", "company", "record label", "record_label",
       "Look up the record label a musical artist is signed to."),
    _r("get_album_release_year", "music", "album", "year", "release year", "release_year",
       "Look up the year a music album was released.", 1960, 2024),
    _r("get_album_artist", "music", "album", "artist", "artist", "artist",
       "Look up the artist who recorded a music album, by the album's title."),
    _r("get_hospital_bed_count", "health", "hospital", "count", "number of beds", "bed_count",
       "Look up how many beds a hospital has.", 40, 2500),
    _r("get_hospital_city", "health", "hospital", "city", "city", "city",
       "Look up the city a hospital is located in, by the hospital's name."),
    _r("get_doctor_specialty", "health", "doctor", "label", "specialty", "specialty",
       "Look up the medical specialty of a doctor, by the doctor's full name.", 0, 0,
       ("cardiology", "dermatology", "neurology", "oncology", "pediatrics", "radiology")),
    _r("get_drug_manufacturer", "health", "drug", "company", "manufacturer", "manufacturer",
       "Look up the company that manufactures a drug, by the drug's name."),
    _r("get_stock_price_usd", "finance", "stock", "money", "share price in US dollars",
       "price_usd", "Look up the latest share price of a stock in US dollars.", 1, 900, (),
       "ticker_symbol"),
    _r("get_stock_exchange", "finance", "stock", "label", "exchange", "exchange",
       "Look up the stock exchange a stock is listed on.", 0, 0,
       ("NYSE", "NASDAQ", "LSE", "TSE", "SIX", "ASX"), "ticker_symbol"),
    _r("get_bank_headquarters", "finance", "bank", "city", "headquarters city",
       "headquarters_city", "Look up the city where a bank has its headquarters."),
    _r("get_bank_founding_year", "finance", "bank", "year", "founding year", "founding_year",
       "Look up the year a bank was founded.", 1700, 2015),
    _r("get_movie_release_year", "media", "movie", "year", "release year", "release_year",
       "Look up the year a movie was released, by the movie's title.", 1920, 2024),
    _r("get_movie_director", "media", "movie", "person", "director", "director",
       "Look up the director of a movie, by the movie's title."),
    _r("get_book_author", "media", "book", "person", "author", "author",
       "Look up the author of a book, by the book's title."),
    _r("get_book_page_count", "media", "book", "count", "number of pages", "page_count",
       "Look up how many pages a book has.", 60, 1400),
    _r("get_city_average_temperature_c", "weather", "city", "count",
       "average temperature in degrees Celsius", "average_temperature_c",
       "Look up a city's yearly average temperature in degrees Celsius.", -5, 31),
    _r("get_city_annual_rainfall_mm", "weather", "city", "count", "annual rainfall in millimetres",
       "annual_rainfall_mm", "Look up a city's average yearly rainfall in millimetres.", 40, 3500),
    _r("get_restaurant_rating", "food", "restaurant", "label", "rating", "rating",
       "Look up the star rating of a restaurant, by the restaurant's name.", 0, 0,
       ("1 star", "2 stars", "3 stars", "4 stars", "5 stars")),
    _r("get_restaurant_city", "food", "restaurant", "city", "city", "city",
       "Look up the city a restaurant is in, by the restaurant's name."),
    _r("get_recipe_calories", "food", "recipe", "count", "calories per serving", "calories",
       "Look up how many calories one serving of a recipe has.", 80, 1500),
)  # fmt: skip

RELATIONS_BY_NAME: dict[str, Relation] = {r.name: r for r in RELATIONS}
WORLD_RELATIONS: tuple[Relation, ...] = tuple(r for r in RELATIONS if r.in_world)


def relation(name: str) -> Relation:
    try:
        return RELATIONS_BY_NAME[name]
    except KeyError:
        raise KeyError(f"no relation template named {name!r}") from None
