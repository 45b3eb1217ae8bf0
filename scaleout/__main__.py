from scaleout.cli import main

main()
