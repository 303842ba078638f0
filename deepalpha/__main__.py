from deepalpha.cli import main

main()
