"""The accounts the posting rules name, once (their Beancount names, as books/chart_of_accounts.toml lists them: an
entry naming one the chart lacks is refused at posting, books/entries.py ``check``)."""

from __future__ import annotations

#: 应收融资租赁款—租赁收款额 / —未实现融资收益 (a contra balance)
RECEIVABLE = "Assets:LeaseReceivable:Payments"
UNEARNED = "Assets:LeaseReceivable:Unearned"
#: 应收账款—承租人: charges outside the lease payments, money a lessee owes back
OTHER_RECEIVABLE = "Assets:Receivable:Lessees"
BANK = "Assets:Bank:Collections"
#: the bank account the lessor pays dealers from (the car's price, 放款)
DISBURSEMENTS = "Assets:Bank:Disbursements"
STRIPE_CLEARING = "Assets:Clearing:Stripe"
VEHICLES_RETURNED = "Assets:Vehicles:Returned"
DEALERS = "Liabilities:Payable:Dealers"
INSURERS = "Liabilities:Payable:Insurers"
DEPOSITS = "Liabilities:Deposits:Lessees"
UNAPPLIED = "Liabilities:Unapplied:Lessees"
#: 应交税费—应交增值税（进项税额）/（销项税额）/ 待转销项税额 (books/vat.py: the tax of rents and receipts)
VAT_INPUT = "Liabilities:Tax:VAT:Input"
VAT_OUTPUT = "Liabilities:Tax:VAT:Output"
VAT_PENDING = "Liabilities:Tax:VAT:Pending"
INTEREST = "Income:Lease:Interest"
LATE_CHARGES = "Income:Lease:LateCharges"
FEES = "Income:Other:Fees"
PROCESSOR_FEES = "Expenses:Finance:ProcessorFees"
