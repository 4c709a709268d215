"""Key events, for the apps that react to them (audit log, mails).

``secupass`` must not import ``deliveries``; ``deliveries`` connects receivers instead.
Every signal is sent inside the transaction that made the change, so what a receiver
writes (an audit row, an outbox mail) commits or rolls back together with the key.

- ``key_created(sender=UserKey, user, key)``: a user's first key became active.
- ``key_reset(sender=UserKey, user, old_key, new_key)``: a new key replaced the active one.
- ``key_unlocked(sender=UserKey, user, key, request)``: the key's pepper was released to its
  owner (every unlock fetches it).
"""

from django.dispatch import Signal

key_created = Signal()
key_reset = Signal()
key_unlocked = Signal()
