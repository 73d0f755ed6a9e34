"""How Debian's Chromium is started for Playwright here (it cannot download its own)."""

CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    # A second host name for this machine: the attack tests serve a hostile page there.
    "--host-resolver-rules=MAP evil.test 127.0.0.1",
]
