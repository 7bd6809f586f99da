"""A recipe box: search recipes, scale them, nutrition, substitutes and shopping lists."""

from __future__ import annotations

import random
from typing import Any

from astra_tool_catalog.catalog_model import ServerSpec, State, ToolError, find, next_id
from astra_tool_catalog.schema_builders import array, integer, number, obj, params, string
from astra_tool_catalog.vocabulary import vocabulary

SERVER = ServerSpec(
    "recipes",
    title="Recipe Box",
    description="Recipes with ingredients and nutrition, substitutes and shopping lists.",
    domain="food",
)

RECIPE_ID = string("Recipe id, e.g. RCP-104.")
LIST_ID = string("Shopping list id, e.g. LST-9001.")
INGREDIENT_LINE = obj(
    {
        "ingredient": string("Ingredient name."),
        "quantity": number("Amount needed."),
        "unit": string("Unit of the amount."),
    }
)


@SERVER.state
def build_state(rng: random.Random) -> State:
    recipes = []
    for i, r in enumerate(vocabulary()["recipes"]):
        recipes.append(
            {
                "recipe_id": f"RCP-{101 + i}",
                "name": r["name"],
                "cuisine": r["cuisine"],
                "total_minutes": r["minutes"] + rng.choice([0, 5, 10]),
                "servings": r["servings"],
                "ingredients": [
                    {"ingredient": n, "quantity": float(q), "unit": u}
                    for n, q, u in r["ingredients"]
                ],
                "nutrition": {
                    "calories": r["calories"],
                    "protein_g": r["protein"],
                    "carbs_g": r["carbs"],
                    "fat_g": r["fat"],
                },
            }
        )
    lists = [
        {
            "list_id": f"LST-{201 + i}",
            "recipe_id": None,
            "items": [
                {"item": name, "quantity": 1.0, "unit": "pcs"}
                for name in rng.sample(["milk", "bread", "eggs", "coffee", "apples"], 3)
            ],
        }
        for i in range(2)
    ]
    return {"recipes": recipes, "lists": lists}


@SERVER.scenario
def scenario(state: State, rng: random.Random) -> dict[str, Any]:
    recipe = rng.choice(state["recipes"])
    with_substitutes = [
        i["ingredient"]
        for i in recipe["ingredients"]
        if i["ingredient"] in vocabulary()["substitutes"]
    ]
    return {
        "query": rng.choice([recipe["cuisine"], recipe["name"].split()[-1].lower()]),
        "recipe_id": recipe["recipe_id"],
        "servings": rng.choice([2, 3, 6, 8]),
        "ingredient": rng.choice(with_substitutes or ["butter"]),
        "list_id": rng.choice(state["lists"])["list_id"],
        "item": rng.choice(["lemons", "parsley", "sparkling water", "dark chocolate"]),
    }


def _recipe(state: State, recipe_id: str) -> dict[str, Any]:
    return find(state, "recipes", "recipe_id", recipe_id, "recipe")


@SERVER.tool(
    "Search recipes by a word in the name or by cuisine.",
    params({"query": string("Word from a recipe name, or a cuisine such as italian.")}),
    returns=obj(
        {
            "recipes": array(
                obj(
                    {
                        "recipe_id": RECIPE_ID,
                        "name": string("Recipe name."),
                        "cuisine": string("Cuisine."),
                        "total_minutes": integer("Preparation and cooking time in minutes."),
                    }
                ),
                "Matching recipes, quickest first.",
            )
        }
    ),
    phrase='find recipes for "{query}"',
)
def search_recipes(state: State, query: str) -> dict[str, Any]:
    q = query.strip().lower()
    hits = [r for r in state["recipes"] if q and (q in r["name"].lower() or q == r["cuisine"])]
    hits.sort(key=lambda r: (r["total_minutes"], r["recipe_id"]))
    keys = ("recipe_id", "name", "cuisine", "total_minutes")
    return {"recipes": [{k: r[k] for k in keys} for r in hits]}


@SERVER.tool(
    "Get a recipe with its servings and ingredient list.",
    params({"recipe_id": RECIPE_ID}),
    returns=obj(
        {
            "recipe_id": RECIPE_ID,
            "name": string("Recipe name."),
            "servings": integer("Servings the quantities are for."),
            "total_minutes": integer("Preparation and cooking time in minutes."),
            "ingredients": array(INGREDIENT_LINE, "Ingredients with quantities."),
        }
    ),
    phrase="get {recipe_id} with its ingredients",
)
def get_recipe(state: State, recipe_id: str) -> dict[str, Any]:
    r = _recipe(state, recipe_id)
    keys = ("recipe_id", "name", "servings", "total_minutes", "ingredients")
    return {k: r[k] for k in keys}


@SERVER.tool(
    "Scale a recipe's ingredient quantities to a number of servings.",
    params(
        {"recipe_id": RECIPE_ID, "servings": integer("Servings wanted.", minimum=1, maximum=24)}
    ),
    returns=obj(
        {
            "recipe_id": RECIPE_ID,
            "servings": integer("Servings the scaled quantities are for."),
            "ingredients": array(INGREDIENT_LINE, "Scaled ingredients."),
        }
    ),
    phrase="scale {recipe_id} to {servings} servings",
)
def scale_recipe(state: State, recipe_id: str, servings: int) -> dict[str, Any]:
    r = _recipe(state, recipe_id)
    factor = servings / r["servings"]
    return {
        "recipe_id": recipe_id,
        "servings": servings,
        "ingredients": [
            {**i, "quantity": round(i["quantity"] * factor, 2)} for i in r["ingredients"]
        ],
    }


@SERVER.tool(
    "Get the nutrition facts per serving of a recipe.",
    params({"recipe_id": RECIPE_ID}),
    returns=obj(
        {
            "recipe_id": RECIPE_ID,
            "calories": integer("Calories per serving (kcal)."),
            "protein_g": number("Protein per serving in grams."),
            "carbs_g": number("Carbohydrates per serving in grams."),
            "fat_g": number("Fat per serving in grams."),
        }
    ),
    phrase="get the nutrition facts of {recipe_id}",
)
def get_nutrition(state: State, recipe_id: str) -> dict[str, Any]:
    r = _recipe(state, recipe_id)
    return {"recipe_id": recipe_id, **r["nutrition"]}


@SERVER.tool(
    "Suggest substitutes for an ingredient (dairy-free, vegetarian or pantry swaps).",
    params({"ingredient": string("Ingredient name, e.g. butter.")}),
    returns=obj(
        {
            "ingredient": string("Ingredient name."),
            "substitutes": array(string("A substitute."), "Suggested substitutes."),
        }
    ),
    phrase="suggest substitutes for {ingredient}",
)
def find_substitutes(state: State, ingredient: str) -> dict[str, Any]:
    name = ingredient.strip().lower()
    table = vocabulary()["substitutes"]
    if name not in table:
        raise ToolError(f"no substitutes known for {ingredient!r}")
    return {"ingredient": name, "substitutes": list(table[name])}


@SERVER.tool(
    "Create a shopping list holding every ingredient of a recipe.",
    params({"recipe_id": RECIPE_ID}),
    returns=obj(
        {
            "list_id": LIST_ID,
            "recipe_id": RECIPE_ID,
            "item_count": integer("Items on the new list."),
        }
    ),
    phrase="make a shopping list from {recipe_id}",
)
def create_shopping_list(state: State, recipe_id: str) -> dict[str, Any]:
    r = _recipe(state, recipe_id)
    items = [
        {"item": i["ingredient"], "quantity": i["quantity"], "unit": i["unit"]}
        for i in r["ingredients"]
    ]
    new = {"list_id": next_id(state, "LST"), "recipe_id": recipe_id, "items": items}
    state["lists"].append(new)
    return {"list_id": new["list_id"], "recipe_id": recipe_id, "item_count": len(items)}


@SERVER.tool(
    "Add an item to a shopping list (its quantity goes up if it is already there).",
    params(
        {"list_id": LIST_ID, "item": string("Name of the grocery item to add.")},
        {"quantity": number("How much to add.", minimum=0.1)},
    ),
    returns=obj(
        {
            "list_id": LIST_ID,
            "item": string("Name of the grocery item added."),
            "item_count": integer("Items now on the list."),
        }
    ),
    phrase="add {item} to {list_id}",
)
def add_to_shopping_list(
    state: State, list_id: str, item: str, quantity: float = 1.0
) -> dict[str, Any]:
    shopping = find(state, "lists", "list_id", list_id, "shopping list")
    name = item.strip().lower()
    for line in shopping["items"]:
        if line["item"] == name:
            line["quantity"] += quantity
            break
    else:
        shopping["items"].append({"item": name, "quantity": quantity, "unit": "pcs"})
    return {"list_id": list_id, "item": name, "item_count": len(shopping["items"])}


@SERVER.tool(
    "Show the items on a shopping list.",
    params({"list_id": LIST_ID}),
    returns=obj(
        {
            "list_id": LIST_ID,
            "items": array(
                obj(
                    {
                        "item": string("Grocery item."),
                        "quantity": number("Amount."),
                        "unit": string("Unit."),
                    }
                ),
                "Items on the list.",
            ),
        }
    ),
    phrase="show me {list_id}",
)
def get_shopping_list(state: State, list_id: str) -> dict[str, Any]:
    shopping = find(state, "lists", "list_id", list_id, "shopping list")
    return {"list_id": list_id, "items": [dict(i) for i in shopping["items"]]}
