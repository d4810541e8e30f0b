"""Verifies real Ostwerk webhook deliveries with the Standard Webhooks
reference library (PyPI `standardwebhooks`, pinned in requirements.txt).

stdin: {"secrets": ["whsec_…", …], "deliveries": [{"id", "timestamp", "signature", "body"}, …]}
stdout: one list per delivery, one boolean per secret: did it verify?
Exit code 3 when the library is missing, so the Rust test can skip.
"""
import json
import sys

try:
    from standardwebhooks.webhooks import Webhook, WebhookVerificationError
except ImportError:
    sys.exit(3)


def verifies(secret, d):
    headers = {
        "webhook-id": d["id"],
        "webhook-timestamp": d["timestamp"],
        "webhook-signature": d["signature"],
    }
    try:
        Webhook(secret).verify(d["body"], headers)
        return True
    except WebhookVerificationError:
        return False


def main():
    request = json.load(sys.stdin)
    print(json.dumps([[verifies(s, d) for s in request["secrets"]] for d in request["deliveries"]]))


if __name__ == "__main__":
    main()
