"""Database connections held only while they are used."""

from django.db import connections


def release_connections() -> None:
    """Give this thread's database connections back (to the pool on PostgreSQL; closed on
    SQLite), except one inside a transaction. The next query opens one again.

    For work that waits on the network for long: a download streaming to a recipient, a
    tus PATCH whose body is still arriving. With 64 threads per process and a pool of
    DATABASE_POOL_SIZE connections, such a thread must not keep one meanwhile.
    """
    for connection in connections.all(initialized_only=True):
        if not connection.in_atomic_block:
            connection.close()
