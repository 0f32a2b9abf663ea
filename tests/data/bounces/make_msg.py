"""Write tests/data/bounces/exo-5.1.11.msg: the Exchange Online bounce as Outlook saves it.

Made with aspose-email-foss (a .msg writer), from the human-readable part of
exo-5.1.11.eml, so that reading it with extract-msg is tested on a real OLE file.
"""

import email
import email.policy
import sys
from pathlib import Path

from aspose.email_foss.msg import MapiMessage

here = Path(sys.argv[1])
eml = email.message_from_bytes((here / "exo-5.1.11.eml").read_bytes(), policy=email.policy.default)
text = eml.get_body(("plain",)).get_content()
address = str(eml.get_payload()[1].get_payload()[1]["Final-Recipient"]).split(";", 1)[1]
msg = MapiMessage.create(subject=str(eml["Subject"]), body=text)
msg.message_class = "REPORT.IPM.Note.NDR"
msg.add_recipient(address, display_name="Accounting Mailbox")
msg.save(here / "exo-5.1.11.msg")
