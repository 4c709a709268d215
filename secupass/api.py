"""The key API under /api/v1/keys/ (DESIGN.md section 4, "User key").

Senders and guests both have keys. The server stores only public keys and material
encrypted under keys derived from the SecuPass; the pepper (wrapped under the master
key) goes only to the key's owner, throttled, and every release is signalled for the
audit log. A key of another user is 404 unless it is public by design (see
``user_key``). Errors are ``{"error": sentence}`` or ``{"errors": {field: [sentence]}}``.
"""

import hashlib
import math

from cryptography.hazmat.primitives.asymmetric import ec
from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.http import Http404, JsonResponse
from django.urls import path
from django.utils.translation import gettext as _
from django.views.decorators.debug import sensitive_variables

from accounts import apiauth, throttle
from accounts.apiauth import error, json_methods
from accounts.emails import normalize_email
from accounts.models import User
from secupass import keys, sxf
from secupass.models import KeyStateError, UserKey
from secupass.signals import key_unlocked

app_name = "keys_api"

MAX_BODY = 1024 * 1024
MAX_KEYRING = 512 * 1024
MAX_KEYRING_VERSION = 2**53 - 1  # the largest integer JavaScript counts exactly
# Pepper releases (one per unlock) per user and per client address in PEPPER_WINDOW.
PEPPER_PER_USER = 10
PEPPER_PER_ADDRESS = 50
PEPPER_WINDOW = 15 * 60


def _private_record_len() -> int:
    """A private record has exactly one length: iv || AES-GCM(the fixed-size JSON) (DESIGN 4)."""
    value = "A" * 43  # 32 bytes as unpadded base64url
    jwk = f'{{"crv":"P-256","d":"{value}","kty":"EC","x":"{value}","y":"{value}"}}'
    return 12 + len(f'{{"ecdh":{jwk},"ecdsa":{jwk}}}') + 16


PRIVATE_RECORD_LEN = _private_record_len()
KEYRING_MIN = 12 + len('{"pins":{},"version":1}') + 16


class Invalid(Exception):
    def __init__(self, errors: dict):
        super().__init__("invalid")
        self.errors = errors


def read_json(request) -> dict:
    return apiauth.read_json(request, MAX_BODY)


def methods(*allowed):
    """Dispatch by HTTP method; invalid fields are 400 with per-field errors."""
    return json_methods(
        *allowed,
        refusals={Invalid: lambda e: JsonResponse({"errors": e.errors}, status=400)},
    )


# -- validation -----------------------------------------------------------------------------


class Fields:
    """Collects per-field errors while reading a request body."""

    def __init__(self, data: dict):
        self.data = data
        self.errors: dict[str, list[str]] = {}

    def fail(self, name, message):
        self.errors.setdefault(name, []).append(str(message))

    def done(self):
        if self.errors:
            raise Invalid(self.errors)

    def bytes(self, name, *, size=None, minimum=0, maximum=None):
        value = self.data.get(name)
        if value is None or value == "":
            self.fail(name, _("This value is missing."))
            return None
        try:
            raw = sxf.b64u_decode(value)
        except sxf.FormatError:
            self.fail(name, _("This value must be unpadded base64url."))
            return None
        if size is not None and len(raw) != size:
            self.fail(name, _("This value must be %(size)d bytes long.") % {"size": size})
            return None
        if len(raw) < minimum or (maximum is not None and len(raw) > maximum):
            self.fail(
                name,
                _("This value must be between %(min)d and %(max)d bytes long.")
                % {"min": minimum, "max": maximum},
            )
            return None
        return raw

    def integer(self, name, *, minimum, maximum, default=None, message=None):
        value = self.data.get(name, default)
        if value is None:
            self.fail(name, _("This value is missing."))
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            self.fail(name, _("This value must be a whole number."))
            return None
        if not minimum <= value <= maximum:
            self.fail(
                name,
                message
                or _("This value must be between %(min)d and %(max)d.")
                % {"min": minimum, "max": maximum},
            )
            return None
        return value

    def public_key(self, name):
        raw = self.bytes(name, size=65)
        if raw is None:
            return None
        try:
            if raw[0] != 4:
                raise ValueError
            ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), raw)
        except ValueError:
            self.fail(name, _("This is not a valid P-256 public key (uncompressed point)."))
            return None
        return raw

    def kdf(self):
        value = self.data.get("kdf", keys.KDF_NAME)
        if value != keys.KDF_NAME:
            self.fail("kdf", _("The key derivation must be %(name)s.") % {"name": keys.KDF_NAME})
        return keys.KDF_NAME

    def iterations(self):
        return self.integer(
            "iterations",
            minimum=keys.MIN_ITERATIONS,
            maximum=keys.MAX_ITERATIONS,
            message=_("Use between %(min)s and %(max)s PBKDF2 iterations.")
            % {"min": f"{keys.MIN_ITERATIONS:,}", "max": f"{keys.MAX_ITERATIONS:,}"},
        )

    def sealed_secrets(self):
        """The parts a SecuPass change replaces: KDF parameters, record and keyring."""
        return {
            "kdf": self.kdf(),
            "iterations": self.iterations(),
            "salt": self.bytes("salt", size=keys.KDF_SALT_LEN),
            "private_record": self.bytes("private_record", size=PRIVATE_RECORD_LEN),
            "keyring": self.bytes("keyring", minimum=KEYRING_MIN, maximum=MAX_KEYRING),
            "keyring_version": self.integer(
                "keyring_version", minimum=1, maximum=MAX_KEYRING_VERSION, default=1
            ),
        }


# -- helpers --------------------------------------------------------------------------------


def active_key(user) -> UserKey:
    key = UserKey.objects.active().select_related("user").filter(user=user).first()
    if key is None:
        raise Http404
    return key


def no_key():
    return error(_("You have no SecuPass key yet. Create one first."), status=404)


def expect_key_id(data: dict, key: UserKey):
    """A client may name the key it worked on; if it was reset meanwhile, stop (409)."""
    named = data.get("key_id")
    if named is not None and str(named) != str(key.id):
        return error(
            _("Your SecuPass key was replaced meanwhile (a reset). Reload and try again."),
            status=409,
        )
    return None


def pepper_allowed(request, user) -> bool:
    """Count one pepper release; False once the user or the client address used its budget."""
    address = hashlib.sha256(throttle.client_address(request).encode()).hexdigest()[:32]
    budgets = {
        f"pepper:user:{user.pk}": PEPPER_PER_USER,
        f"pepper:addr:{address}": PEPPER_PER_ADDRESS,
    }
    counts = cache.get_many(list(budgets))
    if any(counts.get(key, 0) >= limit for key, limit in budgets.items()):
        return False
    for key in budgets:
        throttle.hit(key, PEPPER_WINDOW)
    return True


# -- endpoints ------------------------------------------------------------------------------


def issue(request):
    key, pepper = UserKey.issue(request.api_user)
    return JsonResponse(
        {
            "key_id": str(key.id),
            "pepper": sxf.b64u_encode(pepper),
            "kdf": keys.KDF_NAME,
            "iterations": keys.DEFAULT_ITERATIONS,
        },
        status=201,
    )


def register(request, key_id):
    key = UserKey.objects.select_related("user").filter(pk=key_id, user=request.api_user).first()
    if key is None:
        raise Http404
    fields = Fields(read_json(request))
    ecdh_public = fields.public_key("ecdh_public")
    ecdsa_public = fields.public_key("ecdsa_public")
    if ecdh_public and ecdh_public == ecdsa_public:
        fields.fail("ecdsa_public", _("The signing key must differ from the encryption key."))
    sealed = fields.sealed_secrets()
    fields.done()
    try:
        old = key.register(ecdh_public=ecdh_public, ecdsa_public=ecdsa_public, **sealed)
    except KeyStateError as e:
        return error(e, status=409)
    return JsonResponse(
        {
            "key_id": str(key.id),
            "fingerprint": key.shown_fingerprint,
            "fingerprint_hex": key.fingerprint,
            "replaced": str(old.id) if old else None,
        },
        status=201,
    )


def mine(request):
    try:
        key = active_key(request.api_user)
    except Http404:
        return no_key()
    return JsonResponse(key.owner_json())


def pepper(request):
    user = request.api_user
    try:
        key = active_key(user)
    except Http404:
        return no_key()
    if not pepper_allowed(request, user):
        response = error(
            _(
                "Too many unlock attempts. Wait %(minutes)d minutes, then try again "
                "with your SecuPass."
            )
            % {"minutes": PEPPER_WINDOW // 60},
            status=429,
        )
        response["Retry-After"] = str(PEPPER_WINDOW)
        return response
    with transaction.atomic():
        raw = key.pepper_bytes()
        key_unlocked.send(sender=UserKey, user=user, key=key, request=request)
    return JsonResponse({"key_id": str(key.id), "pepper": sxf.b64u_encode(raw)})


def keyring(request):
    try:
        key = active_key(request.api_user)
    except Http404:
        return no_key()
    data = read_json(request)
    fields = Fields(data)
    blob = fields.bytes("keyring", minimum=KEYRING_MIN, maximum=MAX_KEYRING)
    version = fields.integer("version", minimum=1, maximum=MAX_KEYRING_VERSION)
    fields.done()
    refused = expect_key_id(data, key)
    if refused:
        return refused
    if not key.store_keyring(blob, version):
        stored = UserKey.objects.filter(pk=key.pk).values_list("keyring_version", flat=True).first()
        return error(
            _(
                "The stored keyring is newer (version %(stored)s) than yours (version "
                "%(version)s). Reload it and make your change again."
            )
            % {"stored": stored, "version": version},
            status=409,
            keyring_version=stored,
        )
    return JsonResponse({"key_id": str(key.id), "keyring_version": version})


def change(request):
    try:
        key = active_key(request.api_user)
    except Http404:
        return no_key()
    data = read_json(request)
    fields = Fields(data)
    sealed = fields.sealed_secrets()
    fields.done()
    refused = expect_key_id(data, key)
    if refused:
        return refused
    if not key.change_secupass(**sealed):
        stored = UserKey.objects.filter(pk=key.pk).values_list("keyring_version", flat=True).first()
        return error(
            _(
                "The stored keyring is newer (version %(stored)s) than the one you "
                "re-encrypted. Reload and change your SecuPass again."
            )
            % {"stored": stored},
            status=409,
            keyring_version=stored,
        )
    return JsonResponse(
        {
            "key_id": str(key.id),
            "fingerprint": key.shown_fingerprint,
            "keyring_version": sealed["keyring_version"],
        }
    )


def lookup(request):
    if not request.api_user.is_sender:
        return error(_("Only internal senders may look up keys."), status=403)
    email = normalize_email(request.GET.get("email", ""))
    if not email or len(email) > 254:
        return JsonResponse(
            {"errors": {"email": [_("Give the e-mail address to look up.")]}}, status=400
        )
    key = (
        UserKey.objects.active()
        .select_related("user")
        .filter(user__email=email, user__is_active=True)
        .first()
    )
    if key is None:
        return error(_("There is no SecuPass key for this address."), status=404)
    return JsonResponse(key.public_json())


def user_key(request, key_id):
    """A public key by id, for checking signatures and fingerprints. Senders may see any
    registered key; guests their own and those of senders (who send to them)."""
    caller = request.api_user
    key = (
        UserKey.objects.select_related("user")
        .filter(pk=key_id)
        .exclude(status=UserKey.Status.ISSUED)
        .first()
    )
    if key is None:
        raise Http404
    if not (caller.is_sender or key.user_id == caller.pk or key.user.kind == User.Kind.SENDER):
        raise Http404
    return JsonResponse(key.public_json())


@sensitive_variables("password")
def check_password(request):
    """Is this the caller's login password? Lets the key page refuse a SecuPass equal to
    it without ever sending the SecuPass. Throttled together with failed logins."""
    user = request.api_user
    password = read_json(request).get("password")
    if not isinstance(password, str) or not password:
        return JsonResponse({"errors": {"password": [_("Enter your login password.")]}}, status=400)
    guard = throttle.LoginThrottle(request, user.email)
    if guard.blocked():
        return error(
            _("Too many wrong passwords. Wait %(minutes)d minutes and try again.")
            % {"minutes": math.ceil(settings.LOGIN_THROTTLE_SECONDS / 60)},
            status=429,
        )
    if user.check_password(password):
        return JsonResponse({"ok": True})
    guard.failed()
    return JsonResponse({"ok": False, "error": _("This is not your login password.")})


urlpatterns = [
    path("issue", methods(("POST", issue)), name="issue"),
    path("check-password", methods(("POST", check_password)), name="check_password"),
    path("mine", methods(("GET", mine)), name="mine"),
    path("mine/pepper", methods(("POST", pepper)), name="pepper"),
    path("mine/keyring", methods(("PUT", keyring)), name="keyring"),
    path("mine/change", methods(("POST", change)), name="change"),
    path("lookup", methods(("GET", lookup)), name="lookup"),
    path("users/<uuid:key_id>", methods(("GET", user_key)), name="user"),
    path("<uuid:key_id>/register", methods(("POST", register)), name="register"),
]
