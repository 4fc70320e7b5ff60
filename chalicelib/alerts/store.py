"""The subscribers table (``NEWSROOM_SUBSCRIBERS_TABLE``, keys ``pk``/``sk``, on demand).

Items (every key is derived from the keyed address id, never the address):

    pk = "sub#<first hex digit of id>"  sk = <id>
        one per address: ``state`` pending | active | gone, ``email`` (absent
        once gone), ``topics``/``kinds`` (empty = everything), ``nonce`` (the
        subscription the unsubscribe links belong to), ``pending_*`` (a sign-up
        waiting for its confirmation), ``confirm_sent_at`` (rate limit).
        The 16 ``sub#`` partitions let a sender page through every subscriber
        with Query instead of scanning the delivery records below.
    pk = "sent#<id>"  sk = <release id>
        the exactly-once record of one alert to one address: written with a
        condition *before* the send (``sending``), then ``sent`` or ``failed``
        (``sk = confirm#<nonce>``: a confirmation sent from the alert queue).
        Expires after 30 days (TTL attribute ``expires_at``), long after any
        queue message for that release can still be delivered.
    pk = "fanout#<release id>"  sk = "fanout"
        written once every page of a release's recipients is queued, so a
        duplicated release message does not list the subscribers again; or
        with ``withdrawn_at`` when the release was no longer public when its
        alert was checked: then nothing of that alert is sent, ever.

Unsubscribing replaces the address's item with a tombstone holding only its id
and dates: the address is gone, and old links for it are refused.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

from ..errors import StorageError, TransientStorageError

SHARDS = "0123456789abcdef"
SENT_TTL = 30 * 24 * 3600
_TRANSIENT = {
    "ProvisionedThroughputExceededException",
    "ThrottlingException",
    "RequestLimitExceeded",
    "InternalServerError",
    "ServiceUnavailable",
}


def profile_key(address_id: str) -> dict[str, str]:
    return {"pk": f"sub#{address_id[0]}", "sk": address_id}


class SubscriberStore:
    """DynamoDB adapter: takes its boto3 ``dynamodb`` client; counts its requests."""

    def __init__(self, client: Any, table: str) -> None:
        from boto3.dynamodb.types import TypeDeserializer, TypeSerializer

        self.client = client
        self.table = table
        self._ser = TypeSerializer()
        self._de = TypeDeserializer()
        self.requests: Counter[str] = Counter()

    # encoding
    def _item(self, values: dict[str, Any]) -> dict[str, Any]:
        return {k: self._ser.serialize(v) for k, v in values.items() if v is not None}

    def _plain(self, item: dict[str, Any]) -> dict[str, Any]:
        out = {k: self._de.deserialize(v) for k, v in item.items()}
        for k, v in out.items():
            if hasattr(v, "as_integer_ratio") and not isinstance(v, float):  # Decimal
                out[k] = int(v) if v == int(v) else float(v)
        return out

    def _call(self, op: str, **kwargs: Any) -> dict[str, Any] | None:
        """One request; ``None`` when its condition failed."""
        from botocore.exceptions import BotoCoreError, ClientError

        self.requests[op] += 1
        try:
            return getattr(self.client, op)(TableName=self.table, **kwargs)
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code", ""))
            if code == "ConditionalCheckFailedException":
                return None
            if code in _TRANSIENT:
                raise TransientStorageError(f"dynamodb {self.table}: {code}") from exc
            raise StorageError(f"dynamodb {self.table}: {code or exc}") from exc
        except BotoCoreError as exc:
            raise TransientStorageError(f"dynamodb {self.table}: {exc}") from exc

    def _update_profile(
        self, address_id: str, update: str, condition: str, values: dict[str, Any]
    ) -> bool:
        """One conditional update of an address's profile item (``#s`` names its
        state); False when the condition failed."""
        resp = self._call(
            "update_item",
            Key=self._item(profile_key(address_id)),
            UpdateExpression=update,
            ConditionExpression=condition,
            ExpressionAttributeValues=self._item(values),
            **({"ExpressionAttributeNames": {"#s": "state"}} if "#s" in update + condition else {}),
        )
        return resp is not None

    # one subscriber
    def get(self, address_id: str) -> dict[str, Any] | None:
        resp = self._call("get_item", Key=self._item(profile_key(address_id)), ConsistentRead=True)
        item = (resp or {}).get("Item")
        return self._plain(item) if item else None

    def put_pending(
        self,
        address_id: str,
        email: str,
        topics: list[str],
        kinds: list[str],
        nonce: str,
        now: float,
        previous: dict[str, Any] | None,
    ) -> bool:
        """Record a sign-up waiting for confirmation and stamp the confirmation
        as sent now. Conditional on the item being as read (``previous``), so
        two racing sign-ups send one confirmation. False when the race was lost."""
        stamp = int(now)
        if previous is None:
            values = {
                **profile_key(address_id),
                "state": "pending",
                "email": email,
                "pending_nonce": nonce,
                "pending_topics": topics,
                "pending_kinds": kinds,
                "confirm_sent_at": stamp,
                "created_at": stamp,
            }
            return (
                self._call(
                    "put_item",
                    Item=self._item(values),
                    ConditionExpression="attribute_not_exists(sk)",
                )
                is not None
            )
        state = "active" if previous.get("state") == "active" else "pending"
        values = {
            ":e": email,
            ":s": state,
            ":n": nonce,
            ":t": topics,
            ":k": kinds,
            ":now": stamp,
            ":olds": previous.get("state", ""),
        }
        condition = "#s = :olds"
        if previous.get("confirm_sent_at") is None:
            condition += " AND attribute_not_exists(confirm_sent_at)"
        else:
            condition += " AND confirm_sent_at = :oldc"
            values[":oldc"] = previous["confirm_sent_at"]
        return self._update_profile(
            address_id,
            "SET email = :e, #s = :s, pending_nonce = :n, pending_topics = :t, "
            "pending_kinds = :k, confirm_sent_at = :now, created_at = if_not_exists(created_at, :now) "
            "REMOVE gone_at, gone_reason",
            condition,
            values,
        )

    def restore_stamp(self, address_id: str, stamp: float, previous: int | None) -> None:
        """Undo ``put_pending``'s rate-limit stamp when the confirmation never left."""
        if previous is None:
            update, values = "REMOVE confirm_sent_at", {":c": int(stamp)}
        else:
            update, values = "SET confirm_sent_at = :p", {":c": int(stamp), ":p": previous}
        self._update_profile(address_id, update, "confirm_sent_at = :c", values)

    def confirm(self, address_id: str, item: dict[str, Any], now: float) -> bool:
        """Make the pending sign-up in ``item`` the active subscription."""
        nonce = item["pending_nonce"]
        # an active subscription keeps its nonce: links in alerts already sent still work
        keep = item.get("nonce") if item.get("state") == "active" and item.get("nonce") else nonce
        return self._update_profile(
            address_id,
            "SET #s = :active, topics = pending_topics, kinds = pending_kinds, "
            "nonce = :keep, confirmed_nonce = :n, confirmed_at = :now "
            "REMOVE pending_nonce, pending_topics, pending_kinds",
            "pending_nonce = :n",
            {":active": "active", ":keep": keep, ":n": nonce, ":now": int(now)},
        )

    def remove(self, address_id: str, reason: str, now: float) -> None:
        """Replace the address's item with a tombstone: the id and dates only,
        and whether the address is suppressed (a bounce or complaint)."""
        previous = self.get(address_id) or {}
        values = {
            **profile_key(address_id),
            "state": "gone",
            "gone_at": int(now),
            "gone_reason": reason,
            "confirm_sent_at": previous.get("confirm_sent_at"),
            "suppressed": reason in ("bounce", "complaint") or bool(previous.get("suppressed")),
        }
        self._call("put_item", Item=self._item(values))

    # many subscribers
    def pages(self, *, projection: str = "sk, #s, topics, kinds") -> Iterator[list[dict[str, Any]]]:
        """Every subscriber item, one Query page at a time, shard by shard."""
        for shard in SHARDS:
            start: dict[str, Any] | None = None
            while True:
                kwargs: dict[str, Any] = {
                    "KeyConditionExpression": "pk = :pk",
                    "ExpressionAttributeValues": self._item({":pk": f"sub#{shard}"}),
                }
                if projection:
                    kwargs["ProjectionExpression"] = projection
                    if "#s" in projection:
                        kwargs["ExpressionAttributeNames"] = {"#s": "state"}
                if start:
                    kwargs["ExclusiveStartKey"] = start
                resp = self._call("query", **kwargs) or {}
                items = [self._plain(i) for i in resp.get("Items", [])]
                if items:
                    yield items
                start = resp.get("LastEvaluatedKey")
                if not start:
                    break

    def summary(self) -> dict[str, Any]:
        """Counts for staff (``newsroom subscribers``): by state, and among active
        subscribers by topic and by kind (empty lists counted as "every ...")."""
        states: Counter[str] = Counter()
        topics: Counter[str] = Counter()
        kinds: Counter[str] = Counter()
        for items in self.pages():
            for item in items:
                states[item.get("state", "?")] += 1
                if item.get("state") != "active":
                    continue
                for t in item.get("topics") or ["(every topic)"]:
                    topics[t] += 1
                for k in item.get("kinds") or ["(every kind)"]:
                    kinds[k] += 1
        return {"states": dict(states), "topics": dict(topics), "kinds": dict(kinds)}

    def export(self) -> Iterator[dict[str, Any]]:
        """Every address still held (pending or active), for an operator."""
        for items in self.pages(projection=""):
            for item in items:
                if item.get("email"):
                    yield {
                        "email": item["email"],
                        "state": item.get("state", ""),
                        "topics": item.get("topics") or [],
                        "kinds": item.get("kinds") or [],
                        "confirmed_at": item.get("confirmed_at"),
                    }

    def unsettled_sends(self) -> int:
        """Delivery records still ``sending``: alerts cut off between their record
        and SES (each one a subscriber who missed that alert). A Scan: for operators."""
        count = 0
        kwargs: dict[str, Any] = {
            "FilterExpression": "begins_with(pk, :p) AND #s = :s",
            "ExpressionAttributeNames": {"#s": "state"},
            "ExpressionAttributeValues": self._item({":p": "sent#", ":s": "sending"}),
            "Select": "COUNT",
        }
        while True:
            resp = self._call("scan", **kwargs) or {}
            count += resp.get("Count", 0)
            if not resp.get("LastEvaluatedKey"):
                return count
            kwargs["ExclusiveStartKey"] = resp["LastEvaluatedKey"]

    def get_many(self, address_ids: list[str]) -> dict[str, dict[str, Any]]:
        """Current items of the given ids (consistent reads, 100 per request)."""
        found: dict[str, dict[str, Any]] = {}
        for i in range(0, len(address_ids), 100):
            keys = [self._item(profile_key(a)) for a in dict.fromkeys(address_ids[i : i + 100])]
            request = {self.table: {"Keys": keys, "ConsistentRead": True}}
            for attempt in range(8):
                self.requests["batch_get_item"] += 1
                try:
                    resp = self.client.batch_get_item(RequestItems=request)
                except Exception as exc:  # translated like every other call
                    from botocore.exceptions import ClientError

                    code = (
                        str(exc.response.get("Error", {}).get("Code", ""))
                        if isinstance(exc, ClientError)
                        else ""
                    )
                    cls = TransientStorageError if code in _TRANSIENT or not code else StorageError
                    raise cls(f"dynamodb {self.table}: {code or exc}") from exc
                for item in resp.get("Responses", {}).get(self.table, []):
                    plain = self._plain(item)
                    found[plain["sk"]] = plain
                request = resp.get("UnprocessedKeys") or {}
                if not request:
                    break
                time.sleep(min(0.05 * 2**attempt, 1.0))
            else:
                raise TransientStorageError(f"dynamodb {self.table}: keys left unprocessed")
        return found

    # exactly once
    def claim(self, release_id: str, address_id: str, now: float) -> bool:
        """Record that this alert is about to be sent; False if it already was
        (or is being) sent. The one conditional write exactly-once rests on."""
        values = {
            "pk": f"sent#{address_id}",
            "sk": release_id,
            "state": "sending",
            "at": int(now),
            "expires_at": int(now) + SENT_TTL,
        }
        return (
            self._call(
                "put_item", Item=self._item(values), ConditionExpression="attribute_not_exists(pk)"
            )
            is not None
        )

    def settle(self, release_id: str, address_id: str, state: str, detail: str = "") -> None:
        self._call(
            "update_item",
            Key=self._item({"pk": f"sent#{address_id}", "sk": release_id}),
            UpdateExpression="SET #s = :s, detail = :d",
            ExpressionAttributeNames={"#s": "state"},
            ExpressionAttributeValues=self._item({":s": state, ":d": detail}),
        )

    def unclaim(self, release_id: str, address_id: str) -> None:
        """Give a claim back when the mail service certainly did not take the
        message (throttled), so the retried queue message sends it."""
        self._call(
            "delete_item",
            Key=self._item({"pk": f"sent#{address_id}", "sk": release_id}),
            ConditionExpression="#s = :s",
            ExpressionAttributeNames={"#s": "state"},
            ExpressionAttributeValues=self._item({":s": "sending"}),
        )

    def delivery(self, release_id: str, address_id: str) -> dict[str, Any] | None:
        resp = self._call(
            "get_item",
            Key=self._item({"pk": f"sent#{address_id}", "sk": release_id}),
            ConsistentRead=True,
        )
        item = (resp or {}).get("Item")
        return self._plain(item) if item else None

    def fanned_out(self, release_id: str) -> bool:
        resp = self._call(
            "get_item",
            Key=self._item({"pk": f"fanout#{release_id}", "sk": "fanout"}),
            ConsistentRead=True,
        )
        return bool((resp or {}).get("Item"))

    def mark_fanned_out(self, release_id: str, now: float, pages: int) -> None:
        self._update_release(release_id, now, "pages", pages)

    def withdrawn(self, release_id: str) -> bool:
        resp = self._call(
            "get_item",
            Key=self._item({"pk": f"fanout#{release_id}", "sk": "fanout"}),
            ConsistentRead=True,
        )
        return bool(((resp or {}).get("Item") or {}).get("withdrawn_at"))

    def mark_withdrawn(self, release_id: str, now: float) -> None:
        """The release was gone when its alert was checked: no fan-out and no
        page of its recipients sends anything from now on."""
        self._update_release(release_id, now, "withdrawn_at", int(now))

    def _update_release(self, release_id: str, now: float, name: str, value: int) -> None:
        # an update, not a put: a withdrawal recorded meanwhile is kept
        self._call(
            "update_item",
            Key=self._item({"pk": f"fanout#{release_id}", "sk": "fanout"}),
            UpdateExpression="SET #n = :v, #a = if_not_exists(#a, :a), expires_at = :e",
            ExpressionAttributeNames={"#n": name, "#a": "at"},
            ExpressionAttributeValues=self._item(
                {":v": value, ":a": int(now), ":e": int(now) + SENT_TTL}
            ),
        )
