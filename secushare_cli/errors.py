"""Exit codes and the one exception the commands raise for a person to read."""

OK = 0
FAILED = 1  # network trouble, server error, local I/O error, damaged data
USAGE = 2  # bad options, missing configuration, unreadable input files
REFUSED = 3  # the server refused the token, the address or the password (401, 403, 429)
REJECTED = 4  # the server rejected the request (invalid fields, not found, withdrawn, expired)
UNSAFE = 5  # a key, signature, keyring or file failed a check: nothing was trusted
WAITING = 6  # levels 3/4: no SecuPass key yet, or the sender has not approved it yet
INTERRUPTED = 130  # Ctrl-C

EXIT_CODES_HELP = f"""exit status:
  {OK}    success
  {FAILED}    failure: network or server error, local file error, damaged data
  {USAGE}    usage error: bad options, SECUSHARE_URL/SECUSHARE_TOKEN missing, unreadable files
  {REFUSED}    refused: invalid API token, wrong address, password or SecuPass, too many attempts
  {REJECTED}    rejected: invalid input, delivery not found, withdrawn or expired
  {UNSAFE}    security check failed: a key differs from the one you approved, a signature,
       keyring or file did not verify (nothing was encrypted to it or saved from it)
  {WAITING}    waiting: you have no SecuPass key yet, or the sender has not approved it yet
  {INTERRUPTED}  interrupted (Ctrl-C)"""


class CliError(Exception):
    """A failure explained in words, with the exit status it ends the program with."""

    def __init__(self, message: str, code: int = FAILED):
        super().__init__(message)
        self.code = code
