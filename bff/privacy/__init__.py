"""The person's rights over their personal information (PIPL arts. 15, 44–50): their page on each application
(the consents given, withdrawing the optional ones, requests and their answers) and ops' answers (/ops/privacy)."""
