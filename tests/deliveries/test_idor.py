"""IDOR: every object is reached only through its owner or its own recipient link.

A table of routes, each tried by every actor who has no business there; all get 404. To add
routes (sender pages, the JSON API), append ``Route`` rows to ``ROUTES``: ``url`` builds the
path from the ``World`` (``world.target`` is the delivery under attack, made by
``world.owner``), ``expect`` overrides the status for some actors if a route answers
differently by design (say, a login redirect), and ``actors`` limits who tries it.
"""

from collections.abc import Callable
from dataclasses import dataclass, field

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from accounts.models import User
from tests.deliveries.receive_support import (
    PASSWORD,
    file_url,
    open_and_confirm,
    page,
    zip_url,
)

RITA = "rita@example.org"  # the recipient whose delivery is attacked
OTTO = "otto@example.org"  # another recipient of the same delivery
GUS = "gus@example.org"  # a guest who received another delivery
ACTORS = ("anonymous", "other_recipient", "owner_sender", "other_sender", "guest_of_other")


@dataclass
class World:
    target: object  # Made: the delivery under attack (to RITA and OTTO)
    other: object  # Made: another sender's delivery to GUS
    owner: User
    clients: dict = field(default_factory=dict)  # actor -> logged-in/confirmed Client
    rita: Client | None = None  # the rightful recipient, for the positive control


@dataclass(frozen=True)
class Route:
    name: str
    method: str
    url: Callable[[World], str]
    data: dict | None = None
    headers: dict = field(default_factory=dict)  # extra request headers, as Django test kwargs
    expect: dict = field(default_factory=dict)  # actor -> status, where not 404
    actors: tuple = ACTORS


def _rid(world, email=RITA):
    return world.target.recipients[email].pk


def _sent(name, world, **kwargs):
    return reverse(f"sender:{name}", kwargs={"pk": world.target.delivery.pk, **kwargs})


NOT_OWNER = tuple(a for a in ACTORS if a != "owner_sender")


def _forged_token(world):
    token = world.target.tokens[RITA]
    return token[:-1] + ("A" if token[-1] != "A" else "B")


ROUTES = [
    Route("landing with a forged token", "get", lambda w: f"/d/{_forged_token(w)}"),
    Route(
        "landing: the address step",
        "post",
        lambda w: reverse("receive:address", kwargs={"rid": _rid(w)}),
        data={"email": RITA},
    ),
    Route("delivery page", "get", lambda w: page(w.target)),
    Route("file", "get", lambda w: file_url(w.target, "report.pdf")),
    Route("file, HEAD", "head", lambda w: file_url(w.target, "report.pdf")),
    Route(
        "file, a range",
        "get",
        lambda w: file_url(w.target, "report.pdf"),
        headers={"HTTP_RANGE": "bytes=10-"},
    ),
    Route("ZIP", "get", lambda w: zip_url(w.target)),
    Route(
        "guest registration",
        "post",
        lambda w: reverse("receive:register", kwargs={"rid": _rid(w)}),
        data={"password1": PASSWORD, "password2": PASSWORD},
    ),
    Route(
        "guest code",
        "post",
        lambda w: reverse("receive:verify", kwargs={"rid": _rid(w)}),
        data={"code": "123456"},
    ),
    Route(
        "guest link",
        "get",
        lambda w: reverse("receive:verify_link", kwargs={"rid": _rid(w), "secret": "x" * 32}),
    ),
    Route(
        "switch account",
        "post",
        lambda w: reverse("receive:switch_account", kwargs={"rid": _rid(w)}),
    ),
    Route(
        "another delivery's file under this recipient",
        "get",
        lambda w: reverse(
            "receive:file", kwargs={"rid": _rid(w), "file_id": w.other.files["report.pdf"].pk}
        ),
    ),
    # The sender's pages (deliveries.sender_views): only the owner; see the test at the end.
    Route("sent: status page", "get", lambda w: _sent("detail", w), actors=NOT_OWNER),
    Route("sent: revoke", "post", lambda w: _sent("revoke", w), actors=NOT_OWNER),
    Route(
        "sent: revoke a recipient",
        "post",
        lambda w: _sent("revoke_recipient", w, rid=_rid(w)),
        actors=NOT_OWNER,
    ),
    Route(
        "sent: extend",
        "post",
        lambda w: _sent("extend", w),
        data={"days": 1},
        actors=NOT_OWNER,
    ),
    Route("sent: delete draft", "post", lambda w: _sent("delete_draft", w), actors=NOT_OWNER),
    Route(
        "sent: revoke another delivery's recipient under this delivery",
        "post",
        lambda w: _sent("revoke_recipient", w, rid=w.other.recipients[GUS].pk),
    ),
]


def _guest(email):
    return User.objects.create_guest(email, PASSWORD, email_verified_at=timezone.now())


def _recipient_client(made, email, user=None):
    client = Client()
    if user is not None:
        client.force_login(user)
    open_and_confirm(client, made, email)
    assert client.get(page(made, email)).status_code == 200
    return client


@pytest.fixture(params=[1, 2], ids=["level1", "level2"])
def world(request, make_delivery, sender):
    level = request.param
    other_sender = User.objects.create_user("olga@example.org", PASSWORD, name="Olga Other")
    rita, otto, gus = _guest(RITA), _guest(OTTO), _guest(GUS)
    target = make_delivery(level=level, recipients=[RITA, OTTO])
    other = make_delivery(level=2, recipients=[GUS], owner=other_sender)
    world = World(target=target, other=other, owner=sender)
    world.clients["anonymous"] = Client()
    world.clients["other_recipient"] = _recipient_client(target, OTTO, otto if level > 1 else None)
    world.clients["owner_sender"] = Client()
    world.clients["owner_sender"].force_login(sender)
    world.clients["other_sender"] = Client()
    world.clients["other_sender"].force_login(other_sender)
    world.clients["guest_of_other"] = _recipient_client(other, GUS, gus)
    world.rita = _recipient_client(target, RITA, rita if level > 1 else None)
    return world


def _call(client, route, world):
    url = route.url(world)
    if route.method == "post":
        return client.post(url, route.data or {}, **route.headers)
    return getattr(client, route.method)(url, **route.headers)


@pytest.mark.parametrize("route", ROUTES, ids=[r.name for r in ROUTES])
def test_nobody_but_the_recipient_reaches_it(world, route):
    got = {actor: _call(world.clients[actor], route, world).status_code for actor in route.actors}

    assert got == {actor: route.expect.get(actor, 404) for actor in route.actors}


def test_the_rightful_recipient_does_reach_them(world):
    """The table above is not vacuous: the same URLs work for RITA's own session."""
    for name in ("delivery page", "file", "file, HEAD", "ZIP"):
        route = next(r for r in ROUTES if r.name == name)
        assert _call(world.rita, route, world).status_code == 200, name
    ranged = next(r for r in ROUTES if r.name == "file, a range")
    assert _call(world.rita, ranged, world).status_code == 206


def test_the_owner_does_reach_the_sent_pages(world):
    """The sender rows above are not vacuous: the owner gets the page and can act."""
    owner = world.clients["owner_sender"]
    assert owner.get(_sent("detail", world)).status_code == 200
    assert owner.post(_sent("extend", world), {"days": 1}).status_code == 302
    assert owner.post(_sent("revoke_recipient", world, rid=_rid(world))).status_code == 302
    world.target.recipients[RITA].refresh_from_db()
    assert world.target.recipients[RITA].revoked_at is not None
