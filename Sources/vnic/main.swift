print("vnic")
