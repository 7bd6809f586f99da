"""An online shop: customers, products and orders (find a customer, list their orders, cancel
one, track a shipment, order a product)."""

from __future__ import annotations

import random
from typing import Any

from astra_tool_catalog.catalog_model import ServerSpec, State, ToolError, find, next_id
from astra_tool_catalog.schema_builders import array, integer, number, obj, params, string
from astra_tool_catalog.vocabulary import day, email, people, vocabulary

SERVER = ServerSpec(
    "shop",
    title="Online Shop Orders",
    description="Customer accounts, the product catalogue and orders of a small online shop.",
    domain="e-commerce",
)

ORDER_STATUSES = ["pending", "processing", "shipped", "delivered", "cancelled"]
CUSTOMER_ID = string("Customer account id, e.g. CUS-101.")
ORDER_ID = string("Order id, e.g. ORD-1003.")
PRODUCT_ID = string("Product id (SKU), e.g. PRD-205.")


@SERVER.state
def build_state(rng: random.Random) -> State:
    customers = [
        {"customer_id": f"CUS-{101 + i}", "name": f"{f} {last}", "email": email(f, last)}
        for i, (f, last) in enumerate(people(rng, 12))
    ]
    products = [
        {
            "product_id": f"PRD-{201 + i}",
            "name": name,
            "category": category,
            "price": price,
            "stock": rng.randint(3, 40),
            "description": f"{name} from our {category} range.",
        }
        for i, (name, category, price) in enumerate(vocabulary()["products"])
    ]
    orders = []
    for index in range(40):
        customer = customers[index % len(customers)]
        items = []
        for product in rng.sample(products, rng.randint(1, 3)):
            items.append(
                {
                    "product_id": product["product_id"],
                    "name": product["name"],
                    "quantity": rng.randint(1, 3),
                    "unit_price": product["price"],
                }
            )
        total = round(sum(i["quantity"] * i["unit_price"] for i in items), 2)
        orders.append(
            {
                "order_id": f"ORD-{1001 + index}",
                "customer_id": customer["customer_id"],
                "status": rng.choice(["shipped", "delivered", "delivered", "cancelled"]),
                "created": day(-40 + index),
                "items": items,
                "total": total,
            }
        )
    # each customer's newest order is still open: that is the one people ask about
    newest: dict[str, dict[str, Any]] = {}
    for order in orders:
        newest[order["customer_id"]] = order
    for order in newest.values():
        order["status"] = rng.choice(["pending", "processing"])
    return {"customers": customers, "products": products, "orders": orders}


@SERVER.scenario
def scenario(state: State, rng: random.Random) -> dict[str, Any]:
    customer = rng.choice(state["customers"])
    own = [o for o in state["orders"] if o["customer_id"] == customer["customer_id"]]
    product = rng.choice(state["products"])
    return {
        "email": customer["email"],
        "customer_id": customer["customer_id"],
        "order_id": own[-1]["order_id"],
        "query": rng.choice([product["category"], product["name"].split()[-1].lower()]),
        "product_id": product["product_id"],
        "quantity": rng.randint(1, 3),
    }


@SERVER.tool(
    "Find a customer account by its email address.",
    params({"email": string("Email address of the customer account.")}),
    returns=obj(
        {
            "customer_id": CUSTOMER_ID,
            "name": string("Full name of the customer."),
            "email": string("Email address of the customer account."),
        }
    ),
    phrase="look up the customer account for {email}",
)
def find_customer(state: State, email: str) -> dict[str, Any]:
    row = find(state, "customers", "email", email.strip().lower(), "customer")
    return {"customer_id": row["customer_id"], "name": row["name"], "email": row["email"]}


@SERVER.tool(
    "Search the product catalogue by a word in the product name or category.",
    params(
        {"query": string("Word to look for in product names and categories.")},
        {"max_price": number("Only products at or below this price.", minimum=0)},
    ),
    returns=obj(
        {
            "products": array(
                obj(
                    {
                        "product_id": PRODUCT_ID,
                        "name": string("Product name."),
                        "category": string("Product category."),
                        "price": number("Unit price in USD."),
                    }
                ),
                "Matching products, cheapest first.",
            )
        }
    ),
    phrase='search the shop for products matching "{query}"',
)
def search_products(state: State, query: str, max_price: float | None = None) -> dict[str, Any]:
    q = query.strip().lower()
    hits = [
        p
        for p in state["products"]
        if (q in p["name"].lower() or q == p["category"])
        and (max_price is None or p["price"] <= max_price)
    ]
    hits.sort(key=lambda p: (p["price"], p["product_id"]))
    keys = ("product_id", "name", "category", "price")
    return {"products": [{k: p[k] for k in keys} for p in hits]}


@SERVER.tool(
    "Get the full details of a product, including how many units are in stock.",
    params({"product_id": PRODUCT_ID}),
    returns=obj(
        {
            "product_id": PRODUCT_ID,
            "name": string("Product name."),
            "category": string("Product category."),
            "price": number("Unit price in USD."),
            "stock": integer("Units in stock."),
            "description": string("Short product description."),
        }
    ),
    phrase="get the details and stock level of {product_id}",
)
def get_product(state: State, product_id: str) -> dict[str, Any]:
    return dict(find(state, "products", "product_id", product_id, "product"))


@SERVER.tool(
    "List the orders of a customer account, newest first.",
    params(
        {"customer_id": CUSTOMER_ID},
        {"status": string("Only orders with this status.", enum=ORDER_STATUSES)},
    ),
    returns=obj(
        {
            "customer_id": CUSTOMER_ID,
            "orders": array(
                obj(
                    {
                        "order_id": ORDER_ID,
                        "status": string("Order status.", enum=ORDER_STATUSES),
                        "total": number("Order total in USD."),
                        "created": string("Date the order was placed (YYYY-MM-DD)."),
                    }
                ),
                "The customer's orders, newest first.",
            ),
        }
    ),
    phrase="list the orders of {customer_id}",
)
def search_orders(state: State, customer_id: str, status: str | None = None) -> dict[str, Any]:
    find(state, "customers", "customer_id", customer_id, "customer")
    own = [
        o
        for o in reversed(state["orders"])
        if o["customer_id"] == customer_id and (status is None or o["status"] == status)
    ]
    keys = ("order_id", "status", "total", "created")
    return {"customer_id": customer_id, "orders": [{k: o[k] for k in keys} for o in own]}


@SERVER.tool(
    "Get an order with its items, status and total.",
    params({"order_id": ORDER_ID}),
    returns=obj(
        {
            "order_id": ORDER_ID,
            "customer_id": CUSTOMER_ID,
            "status": string("Order status.", enum=ORDER_STATUSES),
            "created": string("Date the order was placed (YYYY-MM-DD)."),
            "total": number("Order total in USD."),
            "items": array(
                obj(
                    {
                        "product_id": PRODUCT_ID,
                        "name": string("Product name."),
                        "quantity": integer("Units ordered."),
                        "unit_price": number("Price per unit in USD."),
                    }
                ),
                "The ordered items.",
            ),
        }
    ),
    phrase="show me the details of {order_id}",
)
def get_order(state: State, order_id: str) -> dict[str, Any]:
    order = find(state, "orders", "order_id", order_id, "order")
    return {k: order[k] for k in ("order_id", "customer_id", "status", "created", "total", "items")}


@SERVER.tool(
    "Cancel an order that has not shipped yet and refund its total.",
    params(
        {"order_id": ORDER_ID},
        {"reason": string("Why the order is cancelled.")},
    ),
    returns=obj(
        {
            "order_id": ORDER_ID,
            "status": string("New order status."),
            "refund_amount": number("Amount refunded in USD."),
        }
    ),
    phrase="cancel {order_id}",
)
def cancel_order(state: State, order_id: str, reason: str | None = None) -> dict[str, Any]:
    order = find(state, "orders", "order_id", order_id, "order")
    if order["status"] not in ("pending", "processing"):
        raise ToolError(f"order {order_id} is {order['status']} and can no longer be cancelled")
    order["status"] = "cancelled"
    for item in order["items"]:
        find(state, "products", "product_id", item["product_id"], "product")["stock"] += item[
            "quantity"
        ]
    return {"order_id": order_id, "status": "cancelled", "refund_amount": order["total"]}


@SERVER.tool(
    "Track the shipment of an order: carrier, tracking number and expected delivery date.",
    params({"order_id": ORDER_ID}),
    returns=obj(
        {
            "order_id": ORDER_ID,
            "status": string("Shipment status."),
            "carrier": string("Carrier name, or 'not assigned' before shipping."),
            "tracking_number": string("Carrier tracking number, or 'none' before shipping."),
            "estimated_delivery": string("Expected delivery date (YYYY-MM-DD)."),
        }
    ),
    phrase="track the shipment of {order_id}",
)
def track_shipment(state: State, order_id: str) -> dict[str, Any]:
    order = find(state, "orders", "order_id", order_id, "order")
    if order["status"] == "cancelled":
        raise ToolError(f"order {order_id} was cancelled and will not ship")
    number_part = int(order_id.split("-")[1])
    shipped = order["status"] in ("shipped", "delivered")
    carriers = ["ParcelGo", "SwiftShip", "PostExpress"]
    return {
        "order_id": order_id,
        "status": {"delivered": "delivered", "shipped": "in transit"}.get(
            order["status"], "awaiting shipment"
        ),
        "carrier": carriers[number_part % 3] if shipped else "not assigned",
        "tracking_number": f"TRK{number_part * 7919:010d}" if shipped else "none",
        "estimated_delivery": day(number_part % 5 + 2),
    }


@SERVER.tool(
    "Place a new order of one product for a customer account.",
    params(
        {
            "customer_id": CUSTOMER_ID,
            "product_id": PRODUCT_ID,
            "quantity": integer("Units to order.", minimum=1, maximum=10),
        }
    ),
    returns=obj(
        {
            "order_id": ORDER_ID,
            "customer_id": CUSTOMER_ID,
            "status": string("Order status.", enum=ORDER_STATUSES),
            "total": number("Order total in USD."),
        }
    ),
    phrase="order {quantity} unit(s) of {product_id} for {customer_id}",
)
def create_order(state: State, customer_id: str, product_id: str, quantity: int) -> dict[str, Any]:
    find(state, "customers", "customer_id", customer_id, "customer")
    product = find(state, "products", "product_id", product_id, "product")
    if product["stock"] < quantity:
        raise ToolError(f"only {product['stock']} unit(s) of {product_id} in stock")
    product["stock"] -= quantity
    order = {
        "order_id": next_id(state, "ORD"),
        "customer_id": customer_id,
        "status": "pending",
        "created": day(0),
        "items": [
            {
                "product_id": product_id,
                "name": product["name"],
                "quantity": quantity,
                "unit_price": product["price"],
            }
        ],
        "total": round(product["price"] * quantity, 2),
    }
    state["orders"].append(order)
    return {k: order[k] for k in ("order_id", "customer_id", "status", "total")}
