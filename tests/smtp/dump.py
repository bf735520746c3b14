"""Prints the messages of a maildir (written by aiosmtpd's Mailbox handler) as JSON, with
their MIME parts decoded, for the mail tests: [{to, subject, text, html, attachments}]."""
import base64
import email
import email.policy
import json
import os
import sys

out = []
new = os.path.join(sys.argv[1], "new")
for name in sorted(os.listdir(new)) if os.path.isdir(new) else []:
    with open(os.path.join(new, name), "rb") as f:
        msg = email.message_from_binary_file(f, policy=email.policy.default)
    item = {"to": str(msg["To"]), "subject": str(msg["Subject"]), "text": "", "html": "",
            "attachments": [], "inline": [], "message_id": str(msg["Message-ID"])}
    for part in msg.walk():
        ctype = part.get_content_type()
        if part.get_filename():
            text = ctype.startswith("text/")
            item["attachments"].append({"name": part.get_filename(), "type": ctype,
                                        "body": part.get_content() if text else "",
                                        "base64": "" if text else base64.b64encode(part.get_content()).decode()})
        elif part["Content-ID"] and not part.is_multipart():
            # Inline images (cid: references in the HTML part), without their < >.
            item["inline"].append({"cid": str(part["Content-ID"]).strip("<>"), "type": ctype,
                                   "disposition": part.get_content_disposition() or "",
                                   "base64": base64.b64encode(part.get_content()).decode()})
        elif ctype == "text/plain":
            item["text"] += part.get_content()
        elif ctype == "text/html":
            item["html"] += part.get_content()
    out.append(item)
print(json.dumps(out))
