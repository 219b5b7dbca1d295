"""Drives rosti's API the way Rosti documents it: with the coreapi client
(Debian's python3-coreapi), through the CoreJSON schema at /api/schema/.
Usage: coreapi_client.py API_URL TOKEN IMAGE. Prints one JSON object with
what it saw; any failure raises, so the exit status is not 0."""
import json
import sys
from collections.abc import Mapping

import coreapi


def plain(v):
    """coreapi's Object and Array as plain dicts and lists."""
    if isinstance(v, Mapping):
        return {k: plain(x) for k, x in v.items()}
    if isinstance(v, (list, tuple, coreapi.Array)):
        return [plain(x) for x in v]
    return v


url, token, image = sys.argv[1:4]
client = coreapi.Client(auth=coreapi.auth.TokenAuthentication(scheme="Token", token=token))
schema = client.get(url + "/api/schema/")
if not isinstance(schema, coreapi.Document):
    raise SystemExit("schema is not a CoreAPI document: %r" % (schema,))

companies = client.action(schema, ["companies", "list"])
company = companies[0]["id"]
plans = client.action(schema, ["plans", "list"], params={"company_id": company})
app = client.action(schema, ["apps", "create"], params={
    "company_id": company, "name": "viacoreapi", "image": image, "plan": plans[0]["id"],
})
read = client.action(schema, ["apps", "read"], params={"company_id": company, "id": app["id"]})
updated = client.action(schema, ["apps", "partial_update"], params={"company_id": company, "id": app["id"], "app_port": 3000})
restarted = client.action(schema, ["apps-action", "update"], params={"company_id": company, "id": app["id"], "action": "restart"})
try:
    client.action(schema, ["apps-action", "update"], params={"company_id": company, "id": app["id"], "action": "explode"})
    refused = None
except coreapi.exceptions.ErrorMessage as e:
    refused = plain(e.error)
client.action(schema, ["apps", "delete"], params={"company_id": company, "id": app["id"]})
left = client.action(schema, ["apps", "list"], params={"company_id": company})

print(json.dumps({
    "companies": [c["name"] for c in companies],
    "created": app["name"],
    "read": read["name"],
    "app_port": updated["app_port"],
    "restarted": restarted["name"],
    "refused": refused,
    "apps_left": [a["name"] for a in left],
}))
