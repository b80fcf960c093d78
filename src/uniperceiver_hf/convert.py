"""`python -m uniperceiver_hf.convert`, the converter under the name the model cards quote: the same as
`uniperceiver-hf convert` (`uniperceiver_hf.tools.convert`). Not model code: the Hub export leaves it out."""

from .tools.convert import convert_checkpoint, main


__all__ = ["convert_checkpoint", "main"]

if __name__ == "__main__":
    main()
