"""The contract service's signing layer: the platform CA and event certificates (:mod:`.ca`), PAdES signatures
with pyHanko (:mod:`.pades`), offline validation (:mod:`.verify`), the stamp fonts (:mod:`.fonts`).

Typical use in the contract service::

    authority = SigningAuthority.load_or_create(settings.signing_dir)       # once per process
    pdf = certify(pdf, authority.lessor_credential(), [FieldSpec("lessee", 1, box), FieldSpec("lessor", 1, box2)])
    event = authority.issue_event_certificate(name, id_hash, event_id)       # after authenticating the customer
    pdf = sign_lessee(pdf, event, "lessee", png, name, tsa, fonts=authority.stamp_fonts)
    del event                                                                # the event key is never stored
    pdf = countersign_lessor(pdf, authority.lessor_credential(), "lessor", tsa, fonts=authority.stamp_fonts)
    reports = verify_pdf(pdf, authority.trust_roots(), tsa_roots=tsa_roots)
"""

import warnings

from cryptography.utils import CryptographyDeprecationWarning

# cryptography 51 deprecates DSA (pyca/cryptography#15597): reading any public name of its ``dsa`` module warns,
# and pyHanko's signer module imports ``DSAPrivateKey`` at import time (pyhanko/sign/signers/pdf_cms.py) for
# an isinstance check. We never make or accept DSA keys (the platform CA and its certificates are EC/RSA:
# contract/signing/ca.py), so that one warning, from that one module, on the one import, is ignored here —
# every other warning still reaches the log (and fails the tests). Importing pyHanko's signer package first,
# here, means every later ``from pyhanko…`` in the contract service finds it already loaded.
# TODO: remove once pyHanko imports the class lazily or through cryptography's private alias.
with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message="DSA is deprecated", category=CryptographyDeprecationWarning,
                            module=r"pyhanko\.sign\.signers\.pdf_cms")
    import pyhanko.sign.signers  # noqa: F401  (loaded for the side effect described above)

from contract.signing.ca import Credential
from contract.signing.ca import EventCredential
from contract.signing.ca import SigningAuthority
from contract.signing.errors import NoSignatures
from contract.signing.errors import NotAPdf
from contract.signing.errors import SigningFailed
from contract.signing.errors import SigningLayerError
from contract.signing.pades import FieldSpec
from contract.signing.pades import certify
from contract.signing.pades import countersign_lessor
from contract.signing.pades import sign_lessee
from contract.signing.verify import SignatureReport
from contract.signing.verify import verify_pdf

__all__ = ["Credential", "EventCredential", "FieldSpec", "NoSignatures", "NotAPdf", "SignatureReport",
           "SigningAuthority", "SigningFailed", "SigningLayerError", "certify", "countersign_lessor",
           "sign_lessee", "verify_pdf"]
