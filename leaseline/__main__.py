from leaseline.cli import main

main()
